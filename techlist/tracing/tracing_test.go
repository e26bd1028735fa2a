package tracing_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/techlist/techlist"
	"github.com/techlist/techlist/config"
	"github.com/techlist/techlist/testenv/otlpreceiver"
	"github.com/techlist/techlist/tracing"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"
)

func envOf(vars map[string]string) *config.Env {
	return config.NewEnv(func(k string) string { return vars[k] })
}

func TestSetupIsOffUnlessAnEndpointIsSet(t *testing.T) {
	for _, vars := range []map[string]string{
		{},
		{"OTEL_SERVICE_NAME": "x", "OTEL_TRACES_SAMPLER": "always_on"},
		{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_SDK_DISABLED": "true"},
		{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_TRACES_EXPORTER": "none"},
	} {
		env := envOf(vars)
		tr, err := tracing.Setup(context.Background(), env, "svc")
		if err != nil || env.Err() != nil {
			t.Fatalf("%v: %v, %v", vars, err, env.Err())
		}
		if tr.Enabled {
			t.Errorf("%v: tracing on, want off", vars)
		}
		_, span := tr.Tracer("t").Start(context.Background(), "s")
		if span.SpanContext().IsValid() {
			t.Errorf("%v: a span with a valid context from the tracer that is off", vars)
		}
	}
}

func TestSetupRefusesBadValues(t *testing.T) {
	for _, tc := range []struct{ name, value string }{
		{"OTEL_TRACES_SAMPLER", "sometimes"},
		{"OTEL_TRACES_SAMPLER_ARG", "2"},
		{"OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"},
		{"OTEL_TRACES_EXPORTER", "zipkin"},
		{"OTEL_BSP_MAX_QUEUE_SIZE", "-5"},            // the SDK panicked
		{"OTEL_BSP_MAX_QUEUE_SIZE", "2000000000"},    // the SDK ran out of memory
		{"OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "-1"},     // the SDK panicked
		{"OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "100000"}, // more than the queue
		{"OTEL_BSP_SCHEDULE_DELAY", "soon"},
	} {
		vars := map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_TRACES_SAMPLER": "traceidratio", tc.name: tc.value}
		env := envOf(vars)
		if _, err := tracing.Setup(context.Background(), env, "svc"); err != nil {
			t.Fatal(err)
		}
		if err := env.Err(); err == nil || !strings.Contains(err.Error(), tc.name) {
			t.Errorf("%s=%s: got %v, want an error naming it", tc.name, tc.value, err)
		}
	}
}

// A span started through an enabled setup reaches the OTLP endpoint,
// named for the service, and its context crosses a message: what Inject
// returns, Extract turns back into the same trace.
func TestSetupExportsAndCarriesTheContext(t *testing.T) {
	recv := otlpreceiver.Start(t)
	env := envOf(map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": recv.URL, "OTEL_SERVICE_NAME": "tested"})
	tr, err := tracing.Setup(context.Background(), env, "svc")
	if err != nil || env.Err() != nil || !tr.Enabled {
		t.Fatalf("Setup: %v, %v, enabled %v", err, env.Err(), tr.Enabled)
	}
	ctx, span := tr.Tracer("t").Start(context.Background(), "publish")
	carried := tr.Inject(ctx)
	span.End()
	if !techlist.ValidTraceparent(carried.Traceparent) {
		t.Fatalf("Inject: traceparent %q", carried.Traceparent)
	}
	remote := trace.SpanContextFromContext(tr.Extract(context.Background(), carried))
	if remote.TraceID() != span.SpanContext().TraceID() || remote.SpanID() != span.SpanContext().SpanID() || !remote.IsRemote() {
		t.Errorf("Extract: got %v, want the publish span's context, remote", remote)
	}
	if got := trace.SpanContextFromContext(tr.Extract(context.Background(), techlist.TraceContext{Traceparent: "00-junk"})); got.IsValid() {
		t.Errorf("Extract of a malformed traceparent: got %v, want none", got)
	}

	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := tr.Shutdown(shutdown); err != nil {
		t.Fatal(err)
	}
	spans := recv.Spans()
	if len(spans) != 1 || spans[0].Name != "publish" || spans[0].Service != "tested" ||
		spans[0].TraceID != span.SpanContext().TraceID().String() {
		t.Errorf("received %+v, want the one publish span of service tested", spans)
	}
}

// A line logged with a span in its context carries the span's ids.
func TestLogLinesCarryTheTrace(t *testing.T) {
	var out bytes.Buffer
	logger := config.NewLogger(envOf(map[string]string{"LOG_FORMAT": "json"}), &out)
	sc := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{1, 2, 3}, SpanID: trace.SpanID{4, 5, 6}, TraceFlags: trace.FlagsSampled})
	ctx := trace.ContextWithSpanContext(context.Background(), sc)
	logger.With("service", "x").InfoContext(ctx, "inside")
	logger.Info("outside")
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("got %q", out.String())
	}
	if want := `"trace_id":"` + sc.TraceID().String() + `","span_id":"` + sc.SpanID().String() + `"`; !strings.Contains(lines[0], want) {
		t.Errorf("line inside a span: %s; want %s", lines[0], want)
	}
	if strings.Contains(lines[1], "trace_id") {
		t.Errorf("line outside a span: %s; want no trace_id", lines[1])
	}
}

// ChildSpans keeps a span only under a caller's span.
func TestChildSpansOnlyUnderAParent(t *testing.T) {
	recv := otlpreceiver.Start(t)
	env := envOf(map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": recv.URL})
	tr, err := tracing.Setup(context.Background(), env, "svc")
	if err != nil || !tr.Enabled {
		t.Fatal(err)
	}
	children := tr.ChildSpans().Tracer("t")
	if _, span := children.Start(context.Background(), "orphan"); span.SpanContext().IsValid() || span.IsRecording() {
		t.Errorf("a span with no parent was started")
	}
	ctx, parent := tr.Tracer("t").Start(context.Background(), "parent")
	_, child := children.Start(ctx, "child")
	if !child.IsRecording() || child.SpanContext().TraceID() != parent.SpanContext().TraceID() {
		t.Errorf("the span under a parent: recording %v, trace %v; want recording in the parent's trace", child.IsRecording(), child.SpanContext().TraceID())
	}
}

// Tracing off makes no spans and wraps nothing but to carry a caller's
// traceparent from the request into the envelope, as the contract says;
// the transport comes back as it is.
func TestOffOnlyPassesTheCallersTraceContext(t *testing.T) {
	off, err := tracing.Setup(context.Background(), envOf(nil), "svc")
	if err != nil {
		t.Fatal(err)
	}
	if rt := http.DefaultTransport; off.Transport(rt) != rt {
		t.Errorf("Transport with tracing off wrapped the transport")
	}
	var published techlist.Envelope
	pub := off.Publisher(publisherFunc(func(_ context.Context, env techlist.Envelope) error {
		published = env
		return nil
	}), "q")
	h := off.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if trace.SpanFromContext(r.Context()).IsRecording() {
			t.Errorf("a recording span with tracing off")
		}
		pub.Publish(r.Context(), techlist.Envelope{ID: "x"})
	}), "svc")
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	for _, tc := range []struct{ header, want string }{{"", ""}, {tp, tp}, {"00-junk", ""}} {
		req := httptest.NewRequest(http.MethodPost, "/", nil)
		if tc.header != "" {
			req.Header.Set("traceparent", tc.header)
		}
		h.ServeHTTP(httptest.NewRecorder(), req)
		if published.Traceparent != tc.want {
			t.Errorf("traceparent %q: the envelope carries %q, want %q", tc.header, published.Traceparent, tc.want)
		}
	}
}

type publisherFunc func(context.Context, techlist.Envelope) error

func (f publisherFunc) Publish(ctx context.Context, env techlist.Envelope) error { return f(ctx, env) }

// TestLogToThrottlesErrors: OpenTelemetry's errors go to the logger as
// JSON, one per interval with a count of those dropped.
func TestLogToThrottlesErrors(t *testing.T) {
	var buf bytes.Buffer
	tracing.LogTo(slog.New(slog.NewJSONHandler(&buf, nil)))
	defer otel.SetErrorHandler(otel.ErrorHandlerFunc(func(error) {}))
	for range 50 {
		otel.Handle(errors.New("traces export: failed to send"))
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 1 || !strings.HasPrefix(lines[0], "{") || !strings.Contains(lines[0], "traces export") {
		t.Errorf("50 errors at once: got %d lines %q, want one JSON line", len(lines), buf.String())
	}
}
