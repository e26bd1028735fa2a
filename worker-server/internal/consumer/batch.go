package consumer

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/techlist/techlist"
	"github.com/techlist/techlist/retry"
)

// Buffering is a Source that reads messages ahead (a stream's XREADGROUP
// of up to BATCH_SIZE entries, the pub/sub backlog). A worker takes a
// share of them with each message it receives, so a read of 500 is handed
// out in a few dozen turns rather than 500.
type Buffering interface {
	// Buffered is how many messages Receive could hand out now without
	// waiting (at most: some may have been taken over meanwhile).
	Buffered() int
	// ReceiveBuffered appends to ds up to n of those, as Receive would
	// hand them out, without waiting or a round trip.
	ReceiveBuffered(ds []techlist.Delivery, n int) []techlist.Delivery
}

// maxShare bounds the messages one worker takes at once.
const maxShare = 64

// receiver hands the workers their messages, one worker at a time: a
// Source's Receive is not safe for concurrent use, and a failing Receive
// backs off for all of them.
type receiver struct {
	src      Source
	buffered Buffering // src, when it is one; else nil
	workers  int
	logger   *slog.Logger

	mu      sync.Mutex
	backoff retry.Backoff
	done    bool // receiving has ended
}

func (c *Consumer) newReceiver() *receiver {
	r := &receiver{src: c.src, workers: max(c.cfg.Concurrency, 1), logger: c.logger,
		backoff: retry.Backoff{Min: 100 * time.Millisecond, Max: 5 * time.Second, Jitter: true}}
	r.buffered, _ = c.src.(Buffering)
	return r
}

// take appends to ds the next message, waiting for it, and, from a
// Buffering source, this worker's even share of the rest it holds: no
// worker holds back messages another idle one could run. A failed Receive
// is retried with capped, jittered backoff. take returns ds unchanged once
// ctx has ended or the source is drained, and from then on.
func (r *receiver) take(ctx context.Context, ds []techlist.Delivery) []techlist.Delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	for !r.done {
		if ctx.Err() != nil {
			r.done = true
			break
		}
		d, err := r.src.Receive(ctx)
		if err == nil {
			r.backoff.Reset()
			ds = append(ds, d)
			if r.buffered != nil {
				share := (r.buffered.Buffered() + r.workers - 1) / r.workers
				ds = r.buffered.ReceiveBuffered(ds, min(share, maxShare-1))
			}
			return ds
		}
		if ctx.Err() != nil || errors.Is(err, techlist.ErrDrained) {
			r.done = true
			break
		}
		wait := r.backoff.Next()
		r.logger.Warn("receive failed; retrying", "err", err, "in", wait)
		retry.Sleep(ctx, wait)
	}
	return ds
}

// batcher collects rows into batches, closed by size or BatchWait after
// the first of a batch arrived, whichever is first, and once more at the
// end. Up to Flushers batches are stored at once, so the next batch fills
// while the last ones commit. A batch is handed over under the lock: while
// every flusher is busy the workers wait, so rows do not pile up.
type batcher struct {
	size      int
	batchWait time.Duration
	full      chan []result
	free      chan []result // batches stored and emptied, for reuse
	flushers  sync.WaitGroup

	mu     sync.Mutex
	batch  []result
	due    time.Time // when the batch being filled must go
	timer  *time.Timer
	closed bool
}

// newBatcher starts the flushers, which store batches under ctx.
func (c *Consumer) newBatcher(ctx context.Context) *batcher {
	flushers := max(c.cfg.Flushers, 1)
	b := &batcher{size: max(c.cfg.BatchSize, 1), batchWait: c.cfg.BatchWait, full: make(chan []result),
		free: make(chan []result, flushers+1)}
	b.batch = b.fresh()
	b.timer = time.AfterFunc(time.Hour, b.expire)
	b.timer.Stop()
	for range flushers {
		b.flushers.Go(func() {
			for batch := range b.full {
				c.flush(ctx, batch)
				b.recycle(batch)
			}
		})
	}
	return b
}

// add puts a row into the batch being filled, and hands it over when full.
func (b *batcher) add(r result) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.batch) == 0 {
		b.due = time.Now().Add(b.batchWait)
		b.timer.Reset(b.batchWait)
	}
	b.batch = append(b.batch, r)
	if len(b.batch) >= b.size {
		b.send()
	}
}

// send hands the batch to a flusher, waiting for one; b.mu is held.
func (b *batcher) send() {
	if len(b.batch) == 0 {
		return
	}
	b.full <- b.batch
	b.batch = b.fresh()
}

// fresh returns an empty batch, one stored before when there is one: at
// 500 rows a batch is about 100 KB, and allocating one per batch was a
// good part of what the worker's garbage collector had to do.
func (b *batcher) fresh() []result {
	select {
	case batch := <-b.free:
		return batch
	default:
		return make([]result, 0, b.size)
	}
}

// recycle keeps a stored batch for reuse, emptied so that it holds on to
// no payload; flush keeps nothing of it.
func (b *batcher) recycle(batch []result) {
	clear(batch)
	select {
	case b.free <- batch[:0]:
	default:
	}
}

// expire sends the batch whose BatchWait is over. A timer that fired for
// a batch sent meanwhile by size finds the next one not due yet, and
// leaves it to the timer reset for it.
func (b *batcher) expire() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed || time.Now().Before(b.due) {
		return
	}
	b.send()
}

// close sends the last batch and returns once every batch is stored (or
// given up): call it after the last add.
func (b *batcher) close() {
	b.mu.Lock()
	b.timer.Stop()
	b.send()
	b.closed = true
	close(b.full)
	b.mu.Unlock()
	b.flushers.Wait()
}
