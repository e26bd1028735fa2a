// Package retry paces retries: a capped exponential backoff, and a sleep
// that ends early when its context does. Every retry loop of the services
// waits through these, so each loop says only when to give up.
package retry

import (
	"context"
	"math/rand/v2"
	"time"
)

// Backoff is a capped exponential backoff: the first wait is Min, each
// next one twice the last, up to Max. With Jitter, each wait is drawn at
// random from the upper half of that value ([d/2, d]), so that many
// processes retrying together do not all come back at once. Reset starts
// over, as after a success. A Backoff is not safe for concurrent use; each
// loop keeps its own.
type Backoff struct {
	Min, Max time.Duration
	Jitter   bool

	cur time.Duration
}

// Next returns the next wait.
func (b *Backoff) Next() time.Duration {
	if b.cur == 0 {
		b.cur = b.Min
	} else {
		b.cur = min(b.cur*2, b.Max)
	}
	if !b.Jitter {
		return b.cur
	}
	return b.cur/2 + rand.N(b.cur/2+1)
}

// Reset makes the next wait Min again.
func (b *Backoff) Reset() { b.cur = 0 }

// Sleep waits d, or until ctx ends. It reports whether the whole wait
// passed.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
