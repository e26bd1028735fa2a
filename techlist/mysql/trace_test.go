package mysql_test

import (
	"context"
	"strings"
	"testing"

	"github.com/techlist/techlist"
	"github.com/techlist/techlist/mysql"
	"github.com/techlist/techlist/testenv"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// With a Tracer, each query is a span under the caller's span, and its
// statement has placeholders, not the values.
func TestQueriesAreTracedWhenAsked(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	cfg := testenv.MySQLConfig(t)
	cfg.Tracer = tp
	ctx := context.Background()
	store, err := mysql.OpenStore(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	tech := newTech(t, "traced secret text")
	ctx, parent := tp.Tracer("t").Start(ctx, "parent")
	if _, err := store.Insert(ctx, []techlist.Tech{tech}); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Get(ctx, tech.ID); err != nil {
		t.Fatal(err)
	}
	parent.End()
	var queries int
	for _, s := range rec.Ended() {
		if s.Parent().SpanID() != parent.SpanContext().SpanID() {
			continue
		}
		for _, a := range s.Attributes() {
			if strings.Contains(a.Value.String(), "traced secret text") || strings.Contains(a.Value.String(), tech.ID) {
				t.Errorf("span %s attribute %s holds a value: %s", s.Name(), a.Key, a.Value.String())
			}
		}
		queries++
	}
	if queries < 2 {
		t.Errorf("%d spans under the caller's span, want one per statement (insert, select) at least", queries)
	}
}
