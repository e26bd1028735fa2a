package redis

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// A PUBLISH that reached a subscriber does not mean a worker received it:
// a pattern subscriber is not counted by NUMSUB but a stray SUBSCRIBE (a
// redis-cli session while debugging) is, and PUBLISH counts both. So each
// worker keeps a lease in a register of live workers, a sorted set beside
// the channel (member: the worker's name, score: the lease's end in
// milliseconds of Redis' own clock). It holds the lease only while Redis
// has confirmed its subscription, renews it about every second while its
// subscription connection answers, and removes it before it unsubscribes.
// The publish script (publishToWorker, run by Publisher.Publish) refuses a
// message unless a lease is live and the channel has an exact subscriber.

// WorkersKey returns the key of channel's register of live workers. It
// shares the channel's cluster slot (a sharded channel is placed by the
// same hash as a key), so the publish script may read it and SPUBLISH. (A
// channel holding a "}" but no {tag} cannot share a slot with any key: on a
// cluster, name channels without braces, or with a tag.)
func WorkersKey(channel string) string {
	if hasHashTag(channel) {
		return channel + ":workers"
	}
	return "{" + channel + "}:workers"
}

// hasHashTag reports whether Redis Cluster would place s by a {tag} inside
// it rather than by the whole name.
func hasHashTag(s string) bool {
	_, ok := hashTag(s)
	return ok
}

// hashTag returns what Redis Cluster places key by when it holds a tag:
// what lies between its first '{' and the next '}', when not empty.
func hashTag(key string) (string, bool) {
	open := strings.IndexByte(key, '{')
	if open < 0 {
		return "", false
	}
	end := strings.IndexByte(key[open+1:], '}')
	if end <= 0 {
		return "", false
	}
	return key[open+1 : open+1+end], true
}

// renewLease prunes the expired leases, sets this worker's to end ARGV[2]
// milliseconds from Redis' TIME, and lets the key itself expire with the
// last lease, so a worker that died leaves nothing behind for long.
var renewLease = goredis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZADD', KEYS[1], now + lease, ARGV[1])
redis.call('PEXPIRE', KEYS[1], lease)
return 1
`)

// Presence is one worker's lease in a channel's register of live workers.
type Presence struct {
	rdb    goredis.UniversalClient
	key    string
	worker string
	lease  time.Duration
}

// NewPresence returns worker's presence on channel, each renewal holding
// for lease.
func NewPresence(rdb goredis.UniversalClient, channel, worker string, lease time.Duration) *Presence {
	return &Presence{rdb: rdb, key: WorkersKey(channel), worker: worker, lease: lease}
}

// Renew registers the worker, or extends its lease, to lease from now.
func (p *Presence) Renew(ctx context.Context) error {
	err := renewLease.Run(ctx, p.rdb, []string{p.key}, p.worker, p.lease.Milliseconds()).Err()
	if err != nil {
		return fmt.Errorf("renew the lease of %s in %s: %w", p.worker, p.key, err)
	}
	return nil
}

// Withdraw removes the worker's lease: publishes from now on do not count
// on it.
func (p *Presence) Withdraw(ctx context.Context) error {
	if err := p.rdb.ZRem(ctx, p.key, p.worker).Err(); err != nil {
		return fmt.Errorf("withdraw %s from %s: %w", p.worker, p.key, err)
	}
	return nil
}

// StreamWorkersKey returns the key of the register of the workers that
// read channel's stream (QUEUE_MODE=streams). It is kept like the pub/sub
// register, and apart from it: the publish script counts only pub/sub
// workers. Both registers share the channel's cluster slot.
func StreamWorkersKey(channel string) string {
	return strings.TrimSuffix(WorkersKey(channel), ":workers") + ":stream-workers"
}

// NewStreamPresence returns a streams worker's presence in the register of
// channel's stream workers, each renewal holding for lease.
func NewStreamPresence(rdb goredis.UniversalClient, channel, worker string, lease time.Duration) *Presence {
	return &Presence{rdb: rdb, key: StreamWorkersKey(channel), worker: worker, lease: lease}
}

// Keep renews the lease every third of it until ctx ends, then withdraws
// it. A failed renewal is logged; the next one may succeed.
func (p *Presence) Keep(ctx context.Context, logger *slog.Logger) {
	tick := time.NewTicker(p.lease / 3)
	defer tick.Stop()
	for {
		rctx, cancel := context.WithTimeout(ctx, p.lease/3)
		if err := p.Renew(rctx); err != nil && ctx.Err() == nil {
			logger.Warn("renewing the lease failed", "err", err)
		}
		cancel()
		select {
		case <-ctx.Done():
			wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.lease)
			defer cancel()
			if err := p.Withdraw(wctx); err != nil {
				logger.Warn("withdrawing from the register of workers failed; the lease ends by itself", "err", err, "lease", p.lease)
			}
			return
		case <-tick.C:
		}
	}
}

// LiveWorkers is how many workers of each queue mode hold a live lease on
// a channel.
type LiveWorkers struct {
	PubSub  int64 `json:"pubsub"`
	Streams int64 `json:"streams"`
}

// countLive counts the unexpired leases of each register, on Redis' clock.
var countLive = goredis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return {redis.call('ZCOUNT', KEYS[1], '(' .. now, '+inf'), redis.call('ZCOUNT', KEYS[2], '(' .. now, '+inf')}
`)

// CountWorkers returns how many workers of each mode are live on channel.
func CountWorkers(ctx context.Context, rdb goredis.UniversalClient, channel string) (LiveWorkers, error) {
	n, err := countLive.Run(ctx, rdb, []string{WorkersKey(channel), StreamWorkersKey(channel)}).Int64Slice()
	if err != nil {
		return LiveWorkers{}, fmt.Errorf("count the live workers of %s: %w", channel, err)
	}
	if len(n) != 2 {
		return LiveWorkers{}, fmt.Errorf("count the live workers of %s: unexpected answer %v", channel, n)
	}
	return LiveWorkers{PubSub: n[0], Streams: n[1]}, nil
}
