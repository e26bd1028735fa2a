package tracing

import (
	"context"

	"github.com/techlist/techlist"
	"go.opentelemetry.io/otel/propagation"
)

// Inject returns the trace context of ctx's span, to put in a message
// (empty when ctx has no span, as with tracing off), its tracestate bounded
// (techlist.BoundTracestate).
func (t *Tracing) Inject(ctx context.Context) techlist.TraceContext {
	c := propagation.MapCarrier{}
	t.Propagator.Inject(ctx, c)
	return techlist.TraceContext{Traceparent: c["traceparent"], Tracestate: techlist.BoundTracestate(c["tracestate"])}
}

// Extract returns ctx with the remote span context a message carried;
// ctx unchanged when it carried none, or one that is not valid.
func (t *Tracing) Extract(ctx context.Context, c techlist.TraceContext) context.Context {
	if !techlist.ValidTraceparent(c.Traceparent) {
		return ctx
	}
	m := propagation.MapCarrier{"traceparent": c.Traceparent}
	if techlist.ValidTracestate(c.Tracestate) {
		m["tracestate"] = c.Tracestate
	}
	return t.Propagator.Extract(ctx, m)
}
