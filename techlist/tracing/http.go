package tracing

import (
	"net/http"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/propagation"
)

// Handler wraps h in a server span per request, continuing the caller's
// trace from its traceparent header; service.LogRequest renames the span
// by the route once routing is done. With tracing off it only carries a
// caller's traceparent into the request's context (the contract: it goes
// on into the envelope), and costs a header lookup.
func (t *Tracing) Handler(h http.Handler, operation string) http.Handler {
	if !t.Enabled && !CompiledIn {
		return h
	}
	if !t.Enabled {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("traceparent") != "" {
				r = r.WithContext(t.Propagator.Extract(r.Context(), propagation.HeaderCarrier(r.Header)))
			}
			h.ServeHTTP(w, r)
		})
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
