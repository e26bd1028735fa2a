package redis

import (
	"context"
	"sync"

	"github.com/techlist/techlist"
)

// backlog is the ChannelConsumer's in-process buffer between the
// subscription's reader and the worker. The reader never waits on it, so
// Redis never holds output for the worker. It also counts what the worker
// has taken and not yet settled (stored, failed or rejected): a message
// read exists nowhere else until it is stored, so the bound is on both
// together. bound is where the consumer leaves the channel, and low where
// it joins again. A push past bound is kept: what Redis sends before it
// confirms an unsubscribe was accepted by the api-server already.
type backlog struct {
	bound, low int

	mu          sync.Mutex
	items       []techlist.Delivery
	outstanding int // pushed and not yet settled: waiting in items or taken by the worker
	closed      bool

	ready chan struct{} // a token when an item arrives or the backlog closes
	full  chan struct{} // a token when a push brings outstanding to bound
	room  chan struct{} // a token when a settle brings outstanding down to low
}

func newBacklog(bound int) *backlog {
	return &backlog{bound: bound, low: bound / 2,
		ready: make(chan struct{}, 1), full: make(chan struct{}, 1), room: make(chan struct{}, 1)}
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

func (b *backlog) push(d techlist.Delivery) {
	b.mu.Lock()
	b.items = append(b.items, d)
	b.outstanding++
	n := b.outstanding
	b.mu.Unlock()
	signal(b.ready)
	if n >= b.bound {
		signal(b.full)
	}
}

// take returns the oldest item, blocking until there is one, the backlog
// is closed and empty (techlist.ErrDrained), or ctx ends.
func (b *backlog) take(ctx context.Context) (techlist.Delivery, error) {
	for {
		b.mu.Lock()
		if len(b.items) > 0 {
			d := b.items[0]
			b.items[0] = techlist.Delivery{}
			b.items = b.items[1:]
			b.mu.Unlock()
			signal(b.ready) // another taker may be waiting for the rest
			return d, nil
		}
		closed := b.closed
		b.mu.Unlock()
		if closed {
			return techlist.Delivery{}, techlist.ErrDrained
		}
		select {
		case <-ctx.Done():
			return techlist.Delivery{}, ctx.Err()
		case <-b.ready:
		}
	}
}

// takeBuffered appends to ds up to n of the oldest items, without
// waiting for any.
func (b *backlog) takeBuffered(ds []techlist.Delivery, n int) []techlist.Delivery {
	b.mu.Lock()
	defer b.mu.Unlock()
	n = min(n, len(b.items))
	ds = append(ds, b.items[:n]...)
	clear(b.items[:n])
	b.items = b.items[n:]
	return ds
}

// settle says n messages taken are done with: stored, failed or rejected.
func (b *backlog) settle(n int) {
	b.mu.Lock()
	b.outstanding = max(b.outstanding-n, len(b.items))
	m := b.outstanding
	b.mu.Unlock()
	if m <= b.low {
		signal(b.room)
	}
}

// unsettled returns how many messages were pushed and not yet settled.
func (b *backlog) unsettled() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.outstanding
}

func (b *backlog) len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.items)
}

// drop empties the backlog and returns what it held.
func (b *backlog) drop() []techlist.Delivery {
	b.mu.Lock()
	defer b.mu.Unlock()
	items := b.items
	b.outstanding -= len(items)
	b.items = nil
	return items
}

// close says nothing more will be pushed.
func (b *backlog) close() {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	signal(b.ready)
}
