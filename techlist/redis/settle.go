package redis

import (
	"context"
	"errors"
	"fmt"
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
type Settler struct {
	rdb    goredis.UniversalClient
	acker  batchAcker
	cache  *Cache
	events *EventPublisher
}

// NewSettler returns the Settler of source's batches (a *StreamConsumer or
// a *ChannelConsumer), with cache's marks and lists and events' channel.
func NewSettler(rdb goredis.UniversalClient, source any, cache *Cache, events *EventPublisher) (*Settler, error) {
	acker, ok := source.(batchAcker)
	if !ok {
		return nil, fmt.Errorf("settler: %T is not a queue of this package", source)
	}
	return &Settler{rdb: rdb, acker: acker, cache: cache, events: events}, nil
}

// invalidateLists is Cache.InvalidateLists as a script, so that it can ride
// in a pipeline and stay atomic. KEYS: the generation, the pages.
var invalidateLists = goredis.NewScript(`
redis.call('INCR', KEYS[1])
redis.call('DEL', KEYS[2])
return 1
`)

// Settle acknowledges ds, clears the pending marks of ids, invalidates the
// lists and announces events, in that order. Call it only after the
// batch's rows are committed.
func (s *Settler) Settle(ctx context.Context, ds []techlist.Delivery, ids []string, events []techlist.Event) error {
	if isCluster(s.rdb) {
		return s.settleApart(ctx, ds, ids, events)
	}
	buf := make([]byte, 0, 256*len(events))
	_, err := s.rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
		s.acker.queueAck(ctx, p, ds)
		if len(ids) > 0 {
			p.Del(ctx, s.cache.pendingKeys(ids)...)
		}
		invalidateLists.Eval(ctx, p, []string{s.cache.genKey, s.cache.pagesKey})
		for _, ev := range events {
			start := len(buf)
			var err error
			if buf, err = ev.AppendJSON(buf); err != nil {
				return fmt.Errorf("encode event: %w", err)
			}
			p.Publish(ctx, s.events.channel, buf[start:len(buf):len(buf)])
		}
		return nil
	})
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
	invalErr = s.cache.InvalidateLists(ctx)
	wg.Wait()
	return errors.Join(ackErr, clearErr, invalErr, s.events.Announce(ctx, events))
}
