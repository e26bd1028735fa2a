package consumer

import (
	"context"

	"github.com/techlist/techlist"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// The consumer's spans, following OpenTelemetry's messaging conventions:
// one "process <queue>" span per message, a child of the api-server's
// publish span that the envelope carries; one "store batch" span per
// batch, linked to the span of each message it stores, with the INSERT
// and "settle" under it (on a Redis Cluster, "invalidate lists" and
// "announce" instead). Each tech.created event
// carries its message's span, so a page's live update joins the POST's
// trace. With tracing off none of this runs.

const tracerName = "github.com/techlist/worker-server/internal/consumer"

// startMessage starts the span of one message's processing.
func (c *Consumer) startMessage(ctx context.Context, env techlist.Envelope) (context.Context, trace.Span) {
	if !c.tracing.Enabled {
		return ctx, trace.SpanFromContext(ctx) // no span: a no-op
	}
	ctx = c.tracing.Extract(ctx, env.TraceContext)
	return c.tracing.Tracer(tracerName).Start(ctx, "process "+c.cfg.Queue,
		trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(
			attribute.String("messaging.system", "redis"),
			attribute.String("messaging.operation.type", "process"),
			attribute.String("messaging.destination.name", c.cfg.Queue),
			attribute.String("messaging.message.id", env.ID),
		))
}

// startBatch starts the span of storing a batch, linked to its messages.
func (c *Consumer) startBatch(ctx context.Context, batch []result) (context.Context, trace.Span) {
	if !c.tracing.Enabled {
		return ctx, trace.SpanFromContext(ctx)
	}
	links := make([]trace.Link, 0, len(batch))
	for _, r := range batch {
		if r.span.IsValid() {
			links = append(links, trace.Link{SpanContext: r.span})
		}
	}
	return c.tracing.Tracer(tracerName).Start(ctx, "store batch", trace.WithLinks(links...),
		trace.WithAttributes(attribute.Int("messaging.batch.message_count", len(batch))))
}

// startStep starts a span for one step after a commit (settle, or
// invalidate and announce), under the batch's.
func (c *Consumer) startStep(ctx context.Context, name string) (context.Context, trace.Span) {
	if !c.tracing.Enabled {
		return ctx, trace.SpanFromContext(ctx)
	}
	return c.tracing.Tracer(tracerName).Start(ctx, name)
}

// failed marks span as failed with err.
func failed(span trace.Span, err error) {
	span.RecordError(err)
	span.SetStatus(codes.Error, err.Error())
}

// events returns the tech.created events of the stored techs, each
// carrying the span of the message that brought it.
func (c *Consumer) eventsOf(ctx context.Context, batch []result, stored []techlist.Tech) []techlist.Event {
	var spans map[string]trace.SpanContext // nil unless traced: a map of 500 per batch showed in the drain's profile
	if c.tracing.Enabled {
		spans = make(map[string]trace.SpanContext, len(batch))
		for _, r := range batch {
			spans[r.tech.ID] = r.span
		}
	}
	events := make([]techlist.Event, len(stored))
	for i, t := range stored {
		events[i] = techlist.Event{Type: techlist.EventTechCreated, Tech: t}
		if sc, ok := spans[t.ID]; ok && sc.IsValid() {
			events[i].TraceContext = c.tracing.Inject(trace.ContextWithSpanContext(ctx, sc))
		}
	}
	return events
}
