package redis

import (
	"context"
	"errors"
	"sync"
)

// ErrDrained is returned by ChannelConsumer.Receive once the consumer has
// left the channel and handed out everything it had read.
var ErrDrained = errors.New("the subscription has ended and its buffer is empty")

// backlog is the in-process buffer between the subscription's reader and
// the worker. The reader never waits on it, so Redis never holds output
// for the worker; bound is where the consumer leaves the channel, and low
// where it joins again. A push past bound is kept: what Redis sends before
// it confirms an unsubscribe was accepted by the api-server already.
type backlog struct {
	bound, low int

	mu     sync.Mutex
	items  []Delivery
	closed bool

	ready chan struct{} // a token when an item arrives or the backlog closes
	full  chan struct{} // a token when a push reaches bound
	room  chan struct{} // a token when a take comes down to low
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

func (b *backlog) push(d Delivery) {
	b.mu.Lock()
	b.items = append(b.items, d)
	n := len(b.items)
	b.mu.Unlock()
	signal(b.ready)
	if n >= b.bound {
		signal(b.full)
	}
}

// take returns the oldest item, blocking until there is one, the backlog
// is closed and empty (ErrDrained), or ctx ends.
func (b *backlog) take(ctx context.Context) (Delivery, error) {
	for {
		b.mu.Lock()
		if len(b.items) > 0 {
			d := b.items[0]
			b.items[0] = Delivery{}
			b.items = b.items[1:]
			n := len(b.items)
			b.mu.Unlock()
			if n <= b.low {
				signal(b.room)
			}
			signal(b.ready) // another taker may be waiting for the rest
			return d, nil
		}
		closed := b.closed
		b.mu.Unlock()
		if closed {
			return Delivery{}, ErrDrained
		}
		select {
		case <-ctx.Done():
			return Delivery{}, ctx.Err()
		case <-b.ready:
		}
	}
}

func (b *backlog) len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.items)
}

// close says nothing more will be pushed.
func (b *backlog) close() {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	signal(b.ready)
}
