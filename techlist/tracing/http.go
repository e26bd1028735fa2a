package tracing

import (
	"net/http"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
)

// Handler wraps h in a server span per request, continuing the caller's
// trace from its traceparent header; service.LogRequest renames the span
// by the route once routing is done. With tracing off it returns h.
func (t *Tracing) Handler(h http.Handler, operation string) http.Handler {
	if !t.Enabled {
		return h
	}
	return otelhttp.NewHandler(h, operation,
		otelhttp.WithTracerProvider(t.Provider), otelhttp.WithPropagators(t.Propagator))
}

// Transport wraps rt in a client span per call that sends the span's
// traceparent. With tracing off it returns rt.
func (t *Tracing) Transport(rt http.RoundTripper) http.RoundTripper {
	if !t.Enabled {
		return rt
	}
	return otelhttp.NewTransport(rt,
		otelhttp.WithTracerProvider(t.Provider), otelhttp.WithPropagators(t.Propagator))
}
