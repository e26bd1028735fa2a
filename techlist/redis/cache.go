package redis

import (
	"context"
	"errors"
	"fmt"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// Cache is the read cache: list pages, single techs, and the marks of
// accepted techs the worker has not stored yet. Every key starts with the
// prefix (REDIS_CACHE).
//
// List pages live in one hash so one DEL drops them all, beside a
// generation counter. A reader notes the generation when it misses, and its
// fill is applied only if the generation is still the same (checked and
// written atomically in a script). So a reader that read MySQL before a
// write and fills after the worker's invalidation cannot put the old list
// back: the invalidation bumped the generation first.
//
// What one generation holds is bounded: past maxPages pages a fill is
// refused (the page is still served, as a MISS), so crafted cursors cannot
// make the hash grow without bound.
type Cache struct {
	rdb      goredis.UniversalClient
	prefix   string
	ttl      time.Duration
	genKey   string
	pagesKey string
	maxPages int
}

// DefaultMaxPages is how many list pages one generation holds unless
// SetMaxPages says otherwise.
const DefaultMaxPages = 256

// NewCache returns a cache under prefix whose entries live for ttl.
func NewCache(rdb goredis.UniversalClient, prefix string, ttl time.Duration) *Cache {
	// The hash tag keeps the generation and the pages in one cluster slot,
	// as the fill script and the invalidation transaction need.
	return &Cache{
		rdb:      rdb,
		prefix:   prefix,
		ttl:      ttl,
		genKey:   prefix + ":{list}:gen",
		pagesKey: prefix + ":{list}:pages",
		maxPages: DefaultMaxPages,
	}
}

// SetMaxPages bounds how many list pages one generation holds; n < 1 is
// taken as 1.
func (c *Cache) SetMaxPages(n int) { c.maxPages = max(n, 1) }

func (c *Cache) techKey(id string) string { return c.prefix + ":tech:" + id }

// Page returns the cached bytes of the list page named field, or nil on a
// miss, and the generation to hand to SetPage after a miss.
func (c *Cache) Page(ctx context.Context, field string) ([]byte, string, error) {
	var val *goredis.StringCmd
	var gen *goredis.StringCmd
	_, err := c.rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
		val = p.HGet(ctx, c.pagesKey, field)
		gen = p.Get(ctx, c.genKey)
		return nil
	})
	if err != nil && !errors.Is(err, goredis.Nil) {
		return nil, "", fmt.Errorf("cache page %s: %w", field, err)
	}
	g, err := gen.Result()
	if errors.Is(err, goredis.Nil) {
		g = "0"
	} else if err != nil {
		return nil, "", fmt.Errorf("cache generation: %w", err)
	}
	b, err := val.Bytes()
	if errors.Is(err, goredis.Nil) {
		return nil, g, nil
	}
	if err != nil {
		return nil, "", fmt.Errorf("cache page %s: %w", field, err)
	}
	return b, g, nil
}

var fillPage = goredis.NewScript(`
local gen = redis.call('GET', KEYS[1]) or '0'
if gen ~= ARGV[1] then return 0 end
if redis.call('HLEN', KEYS[2]) >= tonumber(ARGV[5]) and redis.call('HEXISTS', KEYS[2], ARGV[2]) == 0 then return 0 end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
if redis.call('PTTL', KEYS[2]) < 0 then redis.call('PEXPIRE', KEYS[2], ARGV[4]) end
return 1
`)

// SetPage caches val as the page named field, unless the list changed since
// the generation gen was read or the generation holds its most pages
// already. It reports whether the page was stored.
// All pages expire together, at most ttl after the first is stored.
func (c *Cache) SetPage(ctx context.Context, field string, val []byte, gen string) (bool, error) {
	n, err := fillPage.Run(ctx, c.rdb, []string{c.genKey, c.pagesKey}, gen, field, val, c.ttl.Milliseconds(), c.maxPages).Int()
	if err != nil {
		return false, fmt.Errorf("fill cache page %s: %w", field, err)
	}
	return n == 1, nil
}

// Tech returns the cached bytes of one stored tech, or nil on a miss.
// A stored tech never changes, so these entries need no invalidation.
func (c *Cache) Tech(ctx context.Context, id string) ([]byte, error) {
	b, err := c.rdb.Get(ctx, c.techKey(id)).Bytes()
	if errors.Is(err, goredis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cache tech %s: %w", id, err)
	}
	return b, nil
}

// SetTech caches the bytes of one stored tech.
func (c *Cache) SetTech(ctx context.Context, id string, val []byte) error {
	if err := c.rdb.Set(ctx, c.techKey(id), val, c.ttl).Err(); err != nil {
		return fmt.Errorf("fill cache tech %s: %w", id, err)
	}
	return nil
}

// InvalidateLists drops every cached list page and bumps the generation,
// in one transaction, so no fill begun before it can land after it.
func (c *Cache) InvalidateLists(ctx context.Context) error {
	_, err := c.rdb.TxPipelined(ctx, func(p goredis.Pipeliner) error {
		p.Incr(ctx, c.genKey)
		p.Del(ctx, c.pagesKey)
		return nil
	})
	if err != nil {
		return fmt.Errorf("invalidate cached lists: %w", err)
	}
	return nil
}
