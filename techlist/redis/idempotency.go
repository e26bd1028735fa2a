package redis

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// Idempotency remembers, for a day by default, which id answered each
// Idempotency-Key, so a retried POST gets the same id and creates nothing.
type Idempotency struct {
	rdb    goredis.UniversalClient
	prefix string
	ttl    time.Duration
}

// NewIdempotency returns the store under prefix (REDIS_CACHE), keeping keys
// for ttl.
func NewIdempotency(rdb goredis.UniversalClient, prefix string, ttl time.Duration) *Idempotency {
	return &Idempotency{rdb: rdb, prefix: prefix, ttl: ttl}
}

// The client's key is hashed: any printable text is a valid key, and the
// Redis key stays short.
func (i *Idempotency) key(k string) string {
	sum := sha256.Sum256([]byte(k))
	return i.prefix + ":idem:" + hex.EncodeToString(sum[:])
}

const inProgress = "pending:"

var reserveKey = goredis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v then return v end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return false
`)

// Reserve claims key for id. When the key already answered, it returns the
// id it answered with; when a request with the key is still in progress,
// busy is true. Otherwise the key is now id's, and the caller must Confirm
// or Release it.
func (i *Idempotency) Reserve(ctx context.Context, key, id string) (existing string, busy bool, err error) {
	v, err := reserveKey.Run(ctx, i.rdb, []string{i.key(key)}, inProgress+id, i.ttl.Milliseconds()).Text()
	if errors.Is(err, goredis.Nil) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("reserve idempotency key: %w", err)
	}
	if strings.HasPrefix(v, inProgress) {
		return "", true, nil
	}
	return v, false, nil
}

// Confirm records that key answered with id.
func (i *Idempotency) Confirm(ctx context.Context, key, id string) error {
	if err := i.rdb.Set(ctx, i.key(key), id, i.ttl).Err(); err != nil {
		return fmt.Errorf("confirm idempotency key: %w", err)
	}
	return nil
}

// Release forgets key, after its request failed, so a retry starts afresh.
func (i *Idempotency) Release(ctx context.Context, key string) error {
	if err := i.rdb.Del(ctx, i.key(key)).Err(); err != nil {
		return fmt.Errorf("release idempotency key: %w", err)
	}
	return nil
}
