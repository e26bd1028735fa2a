package redis_test

import (
	"context"
	"strings"
	"testing"

	"github.com/techlist/techlist/redis"
	"github.com/techlist/techlist/testenv"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// Trace makes each command a span under the caller's, without arguments.
func TestTraceMakesCommandsSpans(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	_, names := testenv.Redis(t)
	rdb := redis.NewClient(redis.Config{Addrs: []string{testenv.RedisAddr()}})
	defer rdb.Close()
	if err := redis.Trace(rdb, tp); err != nil {
		t.Fatal(err)
	}
	ctx, parent := tp.Tracer("t").Start(context.Background(), "parent")
	if err := rdb.Publish(ctx, names.Channel, "secret text").Err(); err != nil {
		t.Fatal(err)
	}
	parent.End()
	found := false
	for _, s := range rec.Ended() {
		if s.Parent().SpanID() != parent.SpanContext().SpanID() {
			continue
		}
		found = found || strings.Contains(strings.ToLower(s.Name()), "publish")
		for _, a := range s.Attributes() {
			if strings.Contains(a.Value.String(), "secret text") {
				t.Errorf("span %s attribute %s holds the argument: %s", s.Name(), a.Key, a.Value.String())
			}
		}
	}
	if !found {
		t.Errorf("no publish span under the caller's span; spans: %d", len(rec.Ended()))
	}
}
