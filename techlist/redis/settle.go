package redis

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	goredis "github.com/redis/go-redis/v9"
	"github.com/techlist/techlist"
)

// batchAcker is a source whose acknowledgement of a batch can ride in
// another pipeline: the stream's XACK and XDEL, or the channel's
// bookkeeping (no command at all).
type batchAcker interface {
	Ack(ctx context.Context, ds ...techlist.Delivery) error
	queueAck(ctx context.Context, p goredis.Pipeliner, ds []techlist.Delivery)
}

var (
	_ batchAcker = (*StreamConsumer)(nil)
	_ batchAcker = (*ChannelConsumer)(nil)
)

// Settler does what follows a committed batch: acknowledge its messages,
// clear their pending marks, invalidate the cached lists, and then
// announce the stored techs. Outside a cluster that is one pipeline, so one
// round trip, run by Redis in that order; in a cluster, where the keys live
// on several nodes and a pipeline's order across them is not kept, the
// first three run side by side and the events go out after them.
//
// Given a PageSource (Prefill), the invalidation also refills the first
// list pages readers keep, in the same atomic step, so a reader finds them
// after a write rather than waiting on MySQL (see invalidateAndFill).
type Settler struct {
	rdb     goredis.UniversalClient
	acker   batchAcker
	cache   *Cache
	events  *EventPublisher
	prefill prefiller
}

// NewSettler returns the Settler of source's batches (a *StreamConsumer or
// a *ChannelConsumer), with cache's marks and lists and events' channel.
func NewSettler(rdb goredis.UniversalClient, source any, cache *Cache, events *EventPublisher) (*Settler, error) {
	acker, ok := source.(batchAcker)
	if !ok {
		return nil, fmt.Errorf("settler: %T is not a queue of this package", source)
	}
	s := &Settler{rdb: rdb, acker: acker, cache: cache, events: events}
	s.prefill.rdb, s.prefill.cache = rdb, cache
	return s, nil
}

// Prefill makes each Settle refill, from source, the first list pages that
// readers kept before it (at most 8, of limits 1 to 100), with one SELECT
// of the largest. Settles that find no first page cached send no SELECT.
// Call it before the first Settle.
func (s *Settler) Prefill(source PageSource) { s.prefill.source = source }

// PrefillQueries is how many SELECTs the prefill sent.
func (s *Settler) PrefillQueries() uint64 { return s.prefill.queries.Load() }

// PrefillFailures is how many prefills were given up (reading the
// generation, the SELECT or the encoding failed), each of those settles
// invalidating without refilling.
func (s *Settler) PrefillFailures() uint64 { return s.prefill.failures.Load() }

// listKeys are the invalidation's keys: one slot (the {list} hash tag).
func (s *Settler) listKeys() []string {
	return []string{s.cache.genKey, s.cache.pagesKey, s.cache.firstKey}
}

// learn reads what the invalidation saw; a failed one taught nothing.
func (s *Settler) learn(cmd *goredis.Cmd) {
	if fields, err := cmd.StringSlice(); err == nil {
		s.prefill.learn(fields)
	}
}

// publishEach publishes each of its arguments after the first on the
// channel the first names, in order: one message per event, as PUBLISH
// would, but one command for the batch. 500 PUBLISH commands in a pipeline
// cost the worker about 1 µs of CPU per event (a command each to build,
// write and read the reply of) and Redis about as much; this, about 0.4
// and 1 µs.
//
// KEYS: none. ARGV: the channel, then the messages.
var publishEach = goredis.NewScript(`
for i = 2, #ARGV do redis.call('PUBLISH', ARGV[1], ARGV[i]) end
return #ARGV - 1
`)

// eventBufs keeps the buffers Settle encodes a batch's events into (about
// 128 KB at 500 rows): one allocated per batch was a good part of the
// worker's garbage while draining.
var eventBufs = sync.Pool{New: func() any { return new([]byte) }}

// Settle acknowledges ds, clears the pending marks of ids, invalidates the
// lists and announces events, in that order. Call it only after the
// batch's rows are committed.
func (s *Settler) Settle(ctx context.Context, ds []techlist.Delivery, ids []string, events []techlist.Event) error {
	if isCluster(s.rdb) {
		return s.settleApart(ctx, ds, ids, events)
	}
	args := s.prefill.args(ctx)
	var inval *goredis.Cmd
	bufp := eventBufs.Get().(*[]byte)
	defer eventBufs.Put(bufp) // after the pipeline, which is done with it
	buf := slices.Grow((*bufp)[:0], 256*len(events))
	_, err := s.rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
		s.acker.queueAck(ctx, p, ds)
		if len(ids) > 0 {
			p.Del(ctx, s.cache.pendingKeys(ids)...)
		}
		inval = invalidateAndFill.Eval(ctx, p, s.listKeys(), args...)
		if len(events) == 0 {
			return nil
		}
		msgs := make([]any, 1, 1+len(events))
		msgs[0] = s.events.channel
		for _, ev := range events {
			start := len(buf)
			var err error
			if buf, err = ev.AppendJSON(buf); err != nil {
				return fmt.Errorf("encode event: %w", err)
			}
			msgs = append(msgs, buf[start:len(buf):len(buf)])
		}
		*bufp = buf[:0]
		publishEach.Eval(ctx, p, nil, msgs...)
		return nil
	})
	if inval != nil {
		s.learn(inval)
	}
	if err != nil {
		return fmt.Errorf("settle a batch of %d: %w", len(ds), err)
	}
	return nil
}

// settleApart is Settle in several round trips, for a cluster.
func (s *Settler) settleApart(ctx context.Context, ds []techlist.Delivery, ids []string, events []techlist.Event) error {
	var ackErr, clearErr, invalErr error
	var wg sync.WaitGroup
	wg.Go(func() { ackErr = s.acker.Ack(ctx, ds...) })
	wg.Go(func() { clearErr = s.cache.ClearPending(ctx, ids...) })
	inval := invalidateAndFill.Run(ctx, s.rdb, s.listKeys(), s.prefill.args(ctx)...)
	s.learn(inval)
	if err := inval.Err(); err != nil {
		invalErr = fmt.Errorf("invalidate cached lists: %w", err)
	}
	wg.Wait()
	return errors.Join(ackErr, clearErr, invalErr, s.events.Announce(ctx, events))
}
