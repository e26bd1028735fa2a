// Package consumer is the worker's loop: take envelopes off the queue,
// check them, run the task with bounded concurrency, and store the results
// in batches; after each commit, acknowledge the messages, invalidate the
// cache and announce the new techs.
package consumer

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/techlist/techlist"
	"github.com/techlist/techlist/retry"
	"github.com/techlist/techlist/tracing"
	"go.opentelemetry.io/otel/trace"
)

// Source hands out messages one at a time and is told what became of
// them. Receive blocks until a message arrives or ctx ends; after it
// returns an error, the next call may succeed (it reconnects). Ack is
// called once the messages' rows are committed, Fail when a message's work
// failed (a durable source hands it out again later), Reject when a message
// is malformed and must never be stored.
type Source interface {
	Receive(ctx context.Context) (techlist.Delivery, error)
	Ack(ctx context.Context, ds ...techlist.Delivery) error
	Fail(ctx context.Context, d techlist.Delivery, reason error) error
	Reject(ctx context.Context, d techlist.Delivery, reason error) error
}

// Drainer is a Source whose messages exist nowhere else once it has read
// them (pub/sub). When Run's context ends the consumer calls Stop, which
// leaves the queue, and goes on receiving, within DrainTimeout, until
// Receive returns techlist.ErrDrained: everything it had read is stored.
type Drainer interface {
	Source
	Stop()
}

// Store writes techs; writing an id already stored must leave it as it was,
// and the returned rows are as stored.
type Store interface {
	Insert(ctx context.Context, techs []techlist.Tech) ([]techlist.Tech, error)
}

// Cache is what the worker invalidates after a commit.
type Cache interface {
	InvalidateLists(ctx context.Context) error
	ClearPending(ctx context.Context, ids ...string) error
}

// Events announces committed techs, one tech.created event each.
type Events interface {
	Announce(ctx context.Context, events []techlist.Event) error
}

// Settler, when given, does all that follows a committed batch in one
// call, in this order: acknowledge its deliveries, clear the pending marks
// of ids, invalidate the lists, announce the events. It stands in for
// Source.Ack, Cache and Events, which take a round trip each.
type Settler interface {
	Settle(ctx context.Context, ds []techlist.Delivery, ids []string, events []techlist.Event) error
}

// Analyse is the background task.
type Analyse func(ctx context.Context, text string) (techlist.Priority, error)

// Config sets the consumer's limits.
type Config struct {
	Concurrency int           // tasks running at once
	BatchSize   int           // rows per INSERT at most
	BatchWait   time.Duration // how long a row may wait for its batch to fill
	Flushers    int           // batches being stored at once (at least 1)
	// DrainTimeout bounds the work after Run's context ends: finishing the
	// running tasks and storing their rows.
	DrainTimeout time.Duration
	Queue        string // the queue's name, for span names
}

// Deps are what the consumer works with; every field is required but
// Settler (nil: Source.Ack, Cache and Events one after the other) and
// Tracing (nil: off).
type Deps struct {
	Source  Source
	Analyse Analyse
	Store   Store
	Cache   Cache
	Events  Events
	Settler Settler
	Logger  *slog.Logger
	Metrics *Metrics
	Now     func() time.Time
	Tracing *tracing.Tracing
}

// Consumer runs the loop.
type Consumer struct {
	cfg     Config
	src     Source
	analyse Analyse
	store   Store
	cache   Cache
	events  Events
	settler Settler
	logger  *slog.Logger
	metrics *Metrics
	now     func() time.Time
	tracing *tracing.Tracing
}

// New returns a Consumer with cfg's limits over d.
func New(cfg Config, d Deps) *Consumer {
	if d.Tracing == nil {
		d.Tracing = tracing.Off()
	}
	return &Consumer{cfg: cfg, src: d.Source, analyse: d.Analyse, store: d.Store, cache: d.Cache, events: d.Events,
		settler: d.Settler, logger: d.Logger, metrics: d.Metrics, now: d.Now, tracing: d.Tracing}
}

// ErrDrainTimeout is returned by Run when messages it had received were not
// stored within DrainTimeout. They were told Fail: a durable source hands
// them out again; on pub/sub they are lost.
var ErrDrainTimeout = errors.New("drain timed out: some received messages were not stored")

type result struct {
	tech      techlist.Tech
	requestID string
	delivery  techlist.Delivery
	span      trace.SpanContext // the message's span (invalid when not traced)
}

// Run consumes until ctx ends, then stops taking messages, lets the running
// tasks finish and stores their rows (within DrainTimeout), and returns.
//
// Concurrency workers each take messages off the source in turn and run
// their tasks; each row goes into the batch being filled, which whoever
// fills it (or BatchWait) hands to the flushers. No goroutine is started
// and no channel crossed per message: at tens of thousands of rows a
// second those hops, not the task, were the worker's cost.
func (c *Consumer) Run(ctx context.Context) error {
	drainCtx, endDrain := c.drainContext(ctx)
	defer endDrain()
	recvCtx, stopSource := c.receiveContext(ctx, drainCtx)
	defer stopSource()

	b := c.newBatcher(drainCtx)
	rc := c.newReceiver()
	var workers sync.WaitGroup
	for range max(c.cfg.Concurrency, 1) {
		workers.Go(func() { c.work(recvCtx, drainCtx, rc, b) })
	}
	workers.Wait()
	c.logger.Info("stopped taking messages; the running tasks have finished")
	b.close()
	if drainCtx.Err() != nil {
		return ErrDrainTimeout
	}
	return nil
}

// drainContext is the context of the work taken off the queue: it outlives
// ctx, since pub/sub cannot give that work back, and ends DrainTimeout
// after ctx does. end releases it.
func (c *Consumer) drainContext(ctx context.Context) (drainCtx context.Context, end func()) {
	drainCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stopTimer := context.AfterFunc(ctx, func() {
		time.AfterFunc(c.cfg.DrainTimeout, cancel)
	})
	return drainCtx, func() {
		stopTimer()
		cancel()
	}
}

// work runs the tasks of the messages it takes, until receiving ends.
// Taken off the queue already, they still run after ctx ends, as long as
// the drain lasts (drainCtx).
func (c *Consumer) work(recvCtx, drainCtx context.Context, rc *receiver, b *batcher) {
	var taken []techlist.Delivery
	for {
		taken = rc.take(recvCtx, taken[:0])
		if len(taken) == 0 {
			return
		}
		c.metrics.received.Add(float64(len(taken)))
		for i, d := range taken {
			taken[i] = techlist.Delivery{} // let the payload go with its row
			env, err := techlist.DecodeEnvelope(d.Payload)
			if err != nil {
				c.reject(drainCtx, d, err)
				continue
			}
			if r, ok := c.runTask(drainCtx, d, env); ok {
				b.add(r)
			}
		}
	}
}

// reject sets a malformed message aside for good.
func (c *Consumer) reject(ctx context.Context, d techlist.Delivery, err error) {
	c.metrics.rejected.Inc()
	c.logger.Warn("rejected a malformed message", "err", err, "bytes", len(d.Payload))
	if err := c.src.Reject(ctx, d, err); err != nil {
		c.logger.Warn("moving a rejected message aside failed", "err", err)
	}
}

// receiveContext is the context messages are received under: ctx, or
// for a Drainer, the drain's (after ctx ends, Stop is called and receiving
// goes on until the source is drained), with the function that cancels
// the Stop when Run returns first.
func (c *Consumer) receiveContext(ctx, drainCtx context.Context) (context.Context, func() bool) {
	d, ok := c.src.(Drainer)
	if !ok {
		return ctx, func() bool { return false }
	}
	return drainCtx, context.AfterFunc(ctx, func() {
		c.logger.Info("leaving the queue; finishing what was read from it")
		d.Stop()
	})
}

// runTask analyses one message and returns its row; a failed task is
// told to the source instead.
func (c *Consumer) runTask(ctx context.Context, d techlist.Delivery, env techlist.Envelope) (result, bool) {
	ctx, span := c.startMessage(ctx, env)
	defer span.End()
	prio, err := c.analyse(ctx, env.Text)
	if err != nil {
		failed(span, err)
		c.metrics.failed.Inc()
		c.logger.Error("task failed; message not stored", "id", env.ID, "request_id", env.RequestID, "err", err)
		if err := c.src.Fail(ctx, d, err); err != nil {
			c.logger.Warn("recording a failure failed", "id", env.ID, "err", err)
		}
		return result{}, false
	}
	return result{
		tech:      techlist.Tech{ID: env.ID, Text: env.Text, Priority: prio, SubmittedAt: env.SubmittedAt.UTC()},
		requestID: env.RequestID,
		delivery:  d,
		span:      span.SpanContext(),
	}, true
}

// flush stores a batch, then acknowledges, invalidates and announces it.
func (c *Consumer) flush(ctx context.Context, batch []result) {
	if len(batch) == 0 {
		return
	}
	ctx, span := c.startBatch(ctx, batch)
	defer span.End()
	now := c.now().UTC().Truncate(time.Microsecond)
	techs := make([]techlist.Tech, len(batch))
	for i, r := range batch {
		techs[i] = r.tech
		techs[i].CreatedAt = now
	}
	stored, ok := c.insert(ctx, batch, techs)
	if !ok {
		return
	}
	c.metrics.stored.Add(float64(len(batch)))
	c.metrics.batchSize.Observe(float64(len(batch)))
	for _, t := range techs {
		// A submitted_at ahead of this host's clock (within
		// techlist.MaxClockSkew) is skew, not a negative lag.
		c.metrics.lag.Observe(max(now.Sub(t.SubmittedAt), 0).Seconds())
	}
	c.settle(ctx, batch, stored)
	c.logStored(ctx, batch, now)
}

// logStored writes one info line per batch and, at debug, one per record.
// At tens of thousands of rows a second a line per record at info would
// cost more than storing it; the per-record line keeps the id of the
// request that submitted it (and, traced, the POST's trace), so a tech can
// still be followed from the client-app to here with LOG_LEVEL=debug.
func (c *Consumer) logStored(ctx context.Context, batch []result, now time.Time) {
	oldest := batch[0].tech.SubmittedAt
	for _, r := range batch[1:] {
		if r.tech.SubmittedAt.Before(oldest) {
			oldest = r.tech.SubmittedAt
		}
	}
	c.logger.InfoContext(ctx, "stored a batch", "rows", len(batch), "first_id", batch[0].tech.ID,
		"last_id", batch[len(batch)-1].tech.ID, "max_lag_ms", max(now.Sub(oldest), 0).Milliseconds())
	if !c.logger.Enabled(ctx, slog.LevelDebug) {
		return
	}
	for _, r := range batch {
		c.logger.DebugContext(trace.ContextWithSpanContext(ctx, r.span), "stored", "id", r.tech.ID, "request_id", r.requestID,
			"priority", r.tech.Priority, "lag_ms", now.Sub(r.tech.SubmittedAt).Milliseconds())
	}
}

// insert stores the batch's techs, retrying with capped, jittered backoff
// until they are committed or ctx ends. When ctx ends first, every message
// of the batch is told Fail and ok is false.
func (c *Consumer) insert(ctx context.Context, batch []result, techs []techlist.Tech) (stored []techlist.Tech, ok bool) {
	backoff := retry.Backoff{Min: 50 * time.Millisecond, Max: 5 * time.Second, Jitter: true}
	for {
		stored, err := c.store.Insert(ctx, techs)
		if err == nil {
			return stored, true
		}
		if ctx.Err() != nil {
			c.giveUp(ctx, batch, err)
			return nil, false
		}
		wait := backoff.Next()
		c.logger.Warn("storing a batch failed; retrying", "rows", len(batch), "err", err, "in", wait)
		retry.Sleep(ctx, wait)
	}
}

// giveUp tells every message of a batch that could not be stored before
// the drain ended that it failed.
func (c *Consumer) giveUp(ctx context.Context, batch []result, err error) {
	c.metrics.failed.Add(float64(len(batch)))
	ids := make([]string, len(batch))
	for i, r := range batch {
		ids[i] = r.tech.ID
	}
	c.logger.Error("gave up storing a batch at shutdown", "rows", len(batch), "ids", ids, "err", err)
	for _, r := range batch {
		// A durable source keeps them pending for another worker.
		c.src.Fail(context.WithoutCancel(ctx), r.delivery, err)
	}
}

// settle follows a committed batch: acknowledging, clearing the pending
// marks and invalidating the cache (side by side, or with a Settler in one
// call); the event goes out after all three, so whoever reacts to it finds
// the row listed and no longer pending. A cache that cannot be invalidated
// now is stale for at most its TTL, so these failures are logged, not
// retried.
func (c *Consumer) settle(ctx context.Context, batch []result, stored []techlist.Tech) {
	ids := make([]string, len(batch))
	deliveries := make([]techlist.Delivery, len(batch))
	for i, r := range batch {
		ids[i] = r.tech.ID
		deliveries[i] = r.delivery
	}
	if c.settler != nil {
		ctx, span := c.startStep(ctx, "settle")
		defer span.End()
		if err := c.settler.Settle(ctx, deliveries, ids, c.eventsOf(ctx, batch, stored)); err != nil {
			failed(span, err)
			c.logger.Warn("settling a stored batch failed; its messages may be delivered again (nothing is stored twice), lists may be stale until the cache TTL, events may be lost",
				"rows", len(batch), "err", err)
		}
		return
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := c.src.Ack(ctx, deliveries...); err != nil {
			c.logger.Warn("ack failed; the messages may be delivered again (nothing is stored twice)", "rows", len(batch), "err", err)
		}
	})
	wg.Go(func() {
		if err := c.cache.ClearPending(ctx, ids...); err != nil {
			c.logger.Warn("clearing pending marks failed", "err", err)
		}
	})
	c.invalidate(ctx)
	wg.Wait()
	c.announce(ctx, batch, stored)
}

// invalidate drops the cached lists a commit made stale.
func (c *Consumer) invalidate(ctx context.Context) {
	ctx, span := c.startStep(ctx, "invalidate lists")
	defer span.End()
	if err := c.cache.InvalidateLists(ctx); err != nil {
		failed(span, err)
		c.logger.Warn("cache invalidation failed; lists may be stale until the cache TTL", "err", err)
	}
}

// announce publishes a tech.created event per stored tech.
func (c *Consumer) announce(ctx context.Context, batch []result, stored []techlist.Tech) {
	ctx, span := c.startStep(ctx, "announce")
	defer span.End()
	if err := c.events.Announce(ctx, c.eventsOf(ctx, batch, stored)); err != nil {
		failed(span, err)
		c.logger.Warn("publishing tech.created events failed", "err", err)
	}
}
