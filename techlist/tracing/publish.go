package tracing

import (
	"context"

	"github.com/techlist/techlist"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// EnvelopePublisher puts an envelope on the queue.
type EnvelopePublisher interface {
	Publish(ctx context.Context, env techlist.Envelope) error
}

// Publisher wraps next in a producer span per publish, "publish <queue>",
// whose context the envelope carries to the worker. With tracing off the
// envelope carries the caller's trace context, when a request brought one.
func (t *Tracing) Publisher(next EnvelopePublisher, queue string) EnvelopePublisher {
	if !t.Enabled && !CompiledIn {
		return next
	}
	if !t.Enabled {
		return passingPublisher{next: next, tracing: t}
	}
	return &tracedPublisher{next: next, tracing: t, queue: queue}
}

// passingPublisher passes a caller's trace context on without tracing.
type passingPublisher struct {
	next    EnvelopePublisher
	tracing *Tracing
}

func (p passingPublisher) Publish(ctx context.Context, env techlist.Envelope) error {
	if trace.SpanContextFromContext(ctx).IsValid() {
		env.TraceContext = p.tracing.Inject(ctx)
	}
	return p.next.Publish(ctx, env)
}

type tracedPublisher struct {
	next    EnvelopePublisher
	tracing *Tracing
	queue   string
}

func (p *tracedPublisher) Publish(ctx context.Context, env techlist.Envelope) error {
	ctx, span := p.tracing.Tracer("github.com/techlist/techlist/tracing").Start(ctx, "publish "+p.queue,
		trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(
			attribute.String("messaging.system", "redis"),
			attribute.String("messaging.operation.type", "send"),
			attribute.String("messaging.destination.name", p.queue),
			attribute.String("messaging.message.id", env.ID),
		))
	defer span.End()
	env.TraceContext = p.tracing.Inject(ctx)
	err := p.next.Publish(ctx, env)
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	return err
}
