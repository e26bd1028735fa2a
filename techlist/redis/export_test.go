package redis

import (
	"context"
	"time"

	"github.com/techlist/techlist"
)

// SetNow makes c read the time from now, so tests can move a page past its
// deadlines without waiting.
func SetNow(c *Cache, now func() time.Time) { c.now = now }

// SetBeforeFlush sets a hook called by a's flusher with each batch's size
// before it sends the batch; set it before the first Do.
func SetBeforeFlush(a *AutoPipeline, hook func(n int)) { a.beforeFlush = hook }

// Queued is how many callers wait for a's next flush.
func Queued(a *AutoPipeline) int { return len(a.jobs) }

// Blocked is how many callers wait for room in a's queue.
func Blocked(a *AutoPipeline) int { return int(a.blocked.Load()) }

// KeySlot is Redis Cluster's slot of key, as computed here.
func KeySlot(key string) int { return keySlot(key) }

// StreamKeys are the keys of stream besides the stream itself: its dead
// letters, failure records and attempt counts, and the append marker of id.
func StreamKeys(stream, id string) []string {
	return []string{DeadStream(stream), errorsKey(stream), attemptsKey(stream), markerKey(stream, id)}
}

// ReserveWithToken is Reserve for the request holding token, as when the
// client resends the script of one request.
func ReserveWithToken(ctx context.Context, i *Idempotency, key, fp, id, token string) (techlist.KeyReservation, error) {
	return i.reserve(ctx, key, fp, id, token)
}

// SetPublisherClock sets the clock p's registrations are timed by; call it
// before publishing.
func SetPublisherClock(p *PartitionedPublisher, now func() time.Time) { p.now = now }
