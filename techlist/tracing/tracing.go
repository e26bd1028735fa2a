// Package tracing sets up OpenTelemetry tracing from the standard OTEL_*
// variables and carries trace context across the queue, in the envelope
// and the tech.created event. With no exporter endpoint configured it
// hands out a no-op provider, and the services install no tracing
// middleware at all, so tracing off costs nothing.
package tracing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/techlist/techlist/config"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/embedded"
	"go.opentelemetry.io/otel/trace/noop"
)

// Tracing is one process's tracer provider and propagator.
type Tracing struct {
	Provider   trace.TracerProvider
	Propagator propagation.TextMapPropagator
	// Enabled is false when no exporter is configured: Provider is a
	// no-op, and callers skip instrumenting altogether.
	Enabled  bool
	shutdown func(context.Context) error
}

// Off returns tracing that records nothing.
func Off() *Tracing {
	return &Tracing{Provider: noop.NewTracerProvider(), Propagator: propagator(),
		shutdown: func(context.Context) error { return nil }}
}

func propagator() propagation.TextMapPropagator {
	return propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
}

// settings are the OTEL_* variables this package reads itself; the OTLP
// exporter reads the rest (headers, timeout, TLS) from the process
// environment, as the specification says.
type settings struct {
	endpoint string // the full traces URL
	service  string
	sampler  sdktrace.Sampler
}

// readSettings reads the standard variables; enabled is false when the
// SDK is disabled, the exporter is "none", or no endpoint is set.
func readSettings(env *config.Env, service string) (s settings, enabled bool) {
	if strings.EqualFold(env.Raw("OTEL_SDK_DISABLED", "false"), "true") {
		return s, false
	}
	if env.Enum("OTEL_TRACES_EXPORTER", "otlp", "otlp", "none") == "none" {
		return s, false
	}
	env.Enum("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf", "http/protobuf")
	s.endpoint = env.Raw("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
	if s.endpoint == "" {
		if base := env.Raw("OTEL_EXPORTER_OTLP_ENDPOINT", ""); base != "" {
			s.endpoint = strings.TrimSuffix(base, "/") + "/v1/traces"
		}
	}
	s.service = env.Raw("OTEL_SERVICE_NAME", service)
	s.sampler = readSampler(env)
	checkBatchSettings(env)
	return s, s.endpoint != ""
}

// checkBatchSettings checks the batch span processor's variables, which
// the SDK reads itself: it panics on a negative size and allocates
// whatever queue it is told to, so a typo would crash the service at
// start instead of naming the variable.
func checkBatchSettings(env *config.Env) {
	queue := env.Int("OTEL_BSP_MAX_QUEUE_SIZE", 2048, 1, 1_000_000)
	env.Int("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", min(512, queue), 1, queue)
	env.Int("OTEL_BSP_SCHEDULE_DELAY", 5000, 0, 3_600_000)  // ms
	env.Int("OTEL_BSP_EXPORT_TIMEOUT", 30000, 1, 3_600_000) // ms
}

// readSampler reads OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG
// (default parentbased_always_on, as the specification says).
func readSampler(env *config.Env) sdktrace.Sampler {
	name := env.Enum("OTEL_TRACES_SAMPLER", "parentbased_always_on", "always_on", "always_off", "traceidratio",
		"parentbased_always_on", "parentbased_always_off", "parentbased_traceidratio")
	ratio := 1.0
	if arg := env.Raw("OTEL_TRACES_SAMPLER_ARG", ""); arg != "" && strings.HasSuffix(name, "traceidratio") {
		r, err := strconv.ParseFloat(arg, 64)
		if err != nil || r < 0 || r > 1 {
			env.Fail("OTEL_TRACES_SAMPLER_ARG", arg, "a ratio from 0 to 1")
		}
		ratio = r
	}
	switch name {
	case "always_on":
		return sdktrace.AlwaysSample()
	case "always_off":
		return sdktrace.NeverSample()
	case "traceidratio":
		return sdktrace.TraceIDRatioBased(ratio)
	case "parentbased_always_off":
		return sdktrace.ParentBased(sdktrace.NeverSample())
	case "parentbased_traceidratio":
		return sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio))
	}
	return sdktrace.ParentBased(sdktrace.AlwaysSample())
}

// Setup reads the OTEL_* variables from env; the caller checks env.Err()
// after it, as with every other variable. service names the process
// unless OTEL_SERVICE_NAME does. Shutdown flushes what is buffered.
func Setup(ctx context.Context, env *config.Env, service string) (*Tracing, error) {
	s, enabled := readSettings(env, service)
	if !enabled || !CompiledIn || env.Err() != nil {
		return Off(), nil
	}
	exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(s.endpoint))
	if err != nil {
		return nil, fmt.Errorf("tracing: the OTLP exporter: %w", err)
	}
	res, err := resource.Merge(resource.Default(), resource.NewWithAttributes(semconv.SchemaURL, semconv.ServiceName(s.service)))
	if err != nil && !errors.Is(err, resource.ErrSchemaURLConflict) {
		return nil, fmt.Errorf("tracing: resource: %w", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res), sdktrace.WithSampler(s.sampler))
	return &Tracing{Provider: tp, Propagator: propagator(), Enabled: true, shutdown: tp.Shutdown}, nil
}

// Shutdown exports the spans still buffered, within ctx.
func (t *Tracing) Shutdown(ctx context.Context) error { return t.shutdown(ctx) }

// Flush exports the spans still buffered at exit, for at most 5 seconds,
// and logs a failure: a process's last spans are worth a short wait.
func (t *Tracing) Flush(logger *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := t.Shutdown(ctx); err != nil {
		logger.Warn("exporting the last spans failed", "err", err)
	}
}

// Tracer returns a tracer named for the instrumenting package.
func (t *Tracing) Tracer(name string) trace.Tracer { return t.Provider.Tracer(name) }

// ChildSpans returns a provider whose tracers start a span only under a
// caller's span: for the Redis and MySQL instrumentations, so a request's
// or a message's commands join its trace, while background work (lease
// renewals, pings, claims) does not fill the store with root spans.
func (t *Tracing) ChildSpans() trace.TracerProvider {
	return childSpansProvider{tp: t.Provider}
}

type childSpansProvider struct {
	embedded.TracerProvider
	tp trace.TracerProvider
}

func (p childSpansProvider) Tracer(name string, opts ...trace.TracerOption) trace.Tracer {
	return childSpansTracer{t: p.tp.Tracer(name, opts...)}
}

type childSpansTracer struct {
	embedded.Tracer
	t trace.Tracer
}

func (t childSpansTracer) Start(ctx context.Context, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return ctx, trace.SpanFromContext(ctx) // a non-recording span: nothing is kept
	}
	return t.t.Start(ctx, name, opts...)
}
