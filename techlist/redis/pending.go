package redis

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// The pending marks: one key per accepted tech the worker has not stored
// yet, under the Cache's prefix. The api-server sets a mark before it
// publishes, and reads it before MySQL for an id not in the cache; the
// worker clears it once the row is committed.

func (c *Cache) pendingKey(id string) string { return c.prefix + ":pending:" + id }

func (c *Cache) pendingKeys(ids []string) []string {
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = c.pendingKey(id)
	}
	return keys
}

// MarkPending records that id was accepted and is on its way to MySQL, for
// ttl at most; the worker clears it when the row is committed.
func (c *Cache) MarkPending(ctx context.Context, id string, ttl time.Duration) error {
	if err := c.markPending(ctx, c.rdb, id, ttl).Err(); err != nil {
		return fmt.Errorf("mark %s pending: %w", id, err)
	}
	return nil
}

// markPending queues the mark's command on cmd: the client, or a pipeline
// that sends it with others (see PendingIndex.MarkPending).
func (c *Cache) markPending(ctx context.Context, cmd goredis.Cmdable, id string, ttl time.Duration) *goredis.StatusCmd {
	return cmd.Set(ctx, c.pendingKey(id), "1", ttl)
}

// Pending reports whether id was accepted and not stored yet.
func (c *Cache) Pending(ctx context.Context, id string) (bool, error) {
	n, err := c.rdb.Exists(ctx, c.pendingKey(id)).Result()
	if err != nil {
		return false, fmt.Errorf("check %s pending: %w", id, err)
	}
	return n == 1, nil
}

// ClearPending forgets the pending marks of ids.
func (c *Cache) ClearPending(ctx context.Context, ids ...string) error {
	if len(ids) == 0 {
		return nil
	}
	keys := c.pendingKeys(ids)
	var err error
	if isCluster(c.rdb) {
		// One DEL per key: in a cluster the keys live in different slots.
		_, err = c.rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
			for _, k := range keys {
				p.Del(ctx, k)
			}
			return nil
		})
	} else {
		// One DEL for the batch: a command per key cost the worker and
		// Redis more than the deletes.
		err = c.rdb.Del(ctx, keys...).Err()
	}
	if err != nil {
		return fmt.Errorf("clear pending marks: %w", err)
	}
	return nil
}

// PendingIndex keeps the ids of accepted, not yet stored techs in one
// sorted set beside the Cache's pending marks, so that how many techs wait
// for the worker can be counted without scanning keys. Each member's score
// is when its mark expires (Unix milliseconds).
//
// The worker clears only the marks (Cache.ClearPending). A member whose mark
// is gone is dropped when Forget is called with its id (the api-server does
// so on each tech.created event) or when Count finds the mark gone; one
// whose mark expired is dropped by score. So Count is exact up to the
// moment's races, and costs a few commands whatever the key space holds.
type PendingIndex struct {
	cache *Cache
	key   string
}

// NewPendingIndex returns the index of cache's pending marks, kept under
// the cache's prefix followed by ":pending-index".
func NewPendingIndex(cache *Cache) *PendingIndex {
	return &PendingIndex{cache: cache, key: cache.prefix + ":pending-index"}
}

// NewPendingMarks returns a PendingIndex that keeps the marks and no index,
// for a queue that counts what waits itself (a stream's length): there an
// index would cost every POST a script and every stored tech a ZREM on
// one key, one master of a cluster, for a count nobody reads. Its Count
// fails.
func NewPendingMarks(cache *Cache) *PendingIndex { return &PendingIndex{cache: cache} }

// errNoIndex is Count's error when no index is kept.
var errNoIndex = errors.New("count pending: no index is kept (the queue counts its backlog)")

// countBatch is how many of the oldest members Count checks at a time, and
// countRounds how many batches at most.
const (
	countBatch  = 256
	countRounds = 8
)

// addPending adds a member and makes the index live at least as long as it.
var addPending = goredis.NewScript(`
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[3]) then redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
return 1
`)

// MarkPending sets id's pending mark for ttl (see Cache.MarkPending) and
// adds id to the index. The index itself expires with its last mark, so it
// never outlives the marks it counts.
func (p *PendingIndex) MarkPending(ctx context.Context, id string, ttl time.Duration) error {
	// One round trip; not a transaction, since in a cluster the mark and
	// the index live in different slots. The mark is written first.
	set, index := p.markCmds(ctx, id, ttl)
	if index == nil {
		if err := p.cache.rdb.Process(ctx, set); err != nil {
			return fmt.Errorf("mark %s pending: %w", id, err)
		}
		return nil
	}
	_, _ = p.cache.rdb.Pipelined(ctx, func(pl goredis.Pipeliner) error {
		_ = pl.Process(ctx, set)
		_ = pl.Process(ctx, index)
		return nil
	})
	if goredis.HasErrorPrefix(index.Err(), "NOSCRIPT") {
		processScript(ctx, p.cache.rdb, index)
	}
	if err := cmp.Or(set.Err(), index.Err()); err != nil {
		return fmt.Errorf("mark %s pending: %w", id, err)
	}
	return nil
}

// markCmds are MarkPending's commands, the mark and the index's script
// (nil when no index is kept), to send in a pipeline in this order (see
// Intake).
func (p *PendingIndex) markCmds(ctx context.Context, id string, ttl time.Duration) (*goredis.StatusCmd, *goredis.Cmd) {
	set := goredis.NewStatusCmd(ctx, "set", p.cache.pendingKey(id), "1", "px", ttl.Milliseconds())
	if p.key == "" {
		return set, nil
	}
	expires := time.Now().Add(ttl).UnixMilli()
	return set, evalSha(ctx, addPending, []string{p.key}, expires, id, ttl.Milliseconds())
}

// Pending reports whether id was accepted and not stored yet.
func (p *PendingIndex) Pending(ctx context.Context, id string) (bool, error) {
	return p.cache.Pending(ctx, id)
}

// ClearPending clears the pending marks of ids and drops them from the index.
func (p *PendingIndex) ClearPending(ctx context.Context, ids ...string) error {
	if err := p.cache.ClearPending(ctx, ids...); err != nil {
		return err
	}
	return p.Forget(ctx, ids...)
}

// Forget drops ids from the index, leaving their marks alone (the worker
// has cleared them already).
func (p *PendingIndex) Forget(ctx context.Context, ids ...string) error {
	if len(ids) == 0 || p.key == "" {
		return nil
	}
	members := make([]any, len(ids))
	for i, id := range ids {
		members[i] = id
	}
	if err := p.cache.rdb.ZRem(ctx, p.key, members...).Err(); err != nil {
		return fmt.Errorf("forget pending ids: %w", err)
	}
	return nil
}

// Count returns how many accepted techs are not stored yet. It drops the
// members whose mark expired, then checks the marks of the oldest members
// (those the worker most likely stored already), a batch at a time, until
// a batch has no stale member or countRounds batches were checked.
func (p *PendingIndex) Count(ctx context.Context) (int64, error) {
	if p.key == "" {
		return 0, errNoIndex
	}
	rdb := p.cache.rdb
	now := strconv.FormatInt(time.Now().UnixMilli(), 10)
	if err := rdb.ZRemRangeByScore(ctx, p.key, "-inf", "("+now).Err(); err != nil {
		return 0, fmt.Errorf("count pending: %w", err)
	}
	var start int64
	for range countRounds {
		ids, err := rdb.ZRange(ctx, p.key, start, start+countBatch-1).Result()
		if err != nil {
			return 0, fmt.Errorf("count pending: %w", err)
		}
		if len(ids) == 0 {
			break
		}
		exists := make([]*goredis.IntCmd, len(ids))
		_, err = rdb.Pipelined(ctx, func(pl goredis.Pipeliner) error {
			for i, id := range ids {
				exists[i] = pl.Exists(ctx, p.cache.pendingKey(id))
			}
			return nil
		})
		if err != nil {
			return 0, fmt.Errorf("count pending: %w", err)
		}
		var gone []string
		for i, cmd := range exists {
			if cmd.Val() == 0 {
				gone = append(gone, ids[i])
			}
		}
		if err := p.Forget(ctx, gone...); err != nil {
			return 0, fmt.Errorf("count pending: %w", err)
		}
		if len(gone) == 0 || len(ids) < countBatch {
			break
		}
		start += int64(len(ids) - len(gone))
	}
	n, err := rdb.ZCard(ctx, p.key).Result()
	if err != nil {
		return 0, fmt.Errorf("count pending: %w", err)
	}
	return n, nil
}
