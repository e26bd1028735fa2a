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

// FirstPage is firstPage: the first page of limit rows cut from a larger
// first page.
func FirstPage(page techlist.Page, limit int) techlist.Page { return firstPage(page, limit) }

// InvalidateAndFill runs the settle's invalidation script on c's lists as
// a worker that read the generation noted before its SELECT, at now, with
// pages (field, bytes, field, bytes...); it returns the first pages it saw.
func InvalidateAndFill(ctx context.Context, c *Cache, noted string, now time.Time, pages ...any) ([]string, error) {
	args := append([]any{noted, now.UnixMilli()}, pages...)
	return invalidateAndFill.Run(ctx, c.rdb, []string{c.genKey, c.pagesKey, c.firstKey}, args...).StringSlice()
}
