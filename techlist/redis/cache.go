package redis

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
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
// Each page has its own lifetime, kept beside it in the hash (field
// "exp:<field>", "<soft ms>:<hard ms>" since the epoch): past the hard
// deadline it is a miss, past the soft one it is still served but stale, so
// a reader refreshes it before it expires (stale-while-revalidate). Each
// fill draws its lifetime from [ttl·(1−jitter), ttl], so pages filled
// together do not all expire together. The hash's own TTL, renewed by every
// fill, only bounds what is left once nobody reads.
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
	// firstKey holds the deadlines of the first pages readers keep, for
	// the worker's prefill (see invalidateAndFill).
	firstKey string
	maxPages int
	// jitter is the fraction of ttl a fill's lifetime may fall short by;
	// refreshAfter is when, in an unshortened lifetime, a page turns stale.
	jitter       float64
	refreshAfter time.Duration
	now          func() time.Time
}

// DefaultMaxPages is how many list pages one generation holds unless
// SetMaxPages says otherwise.
const DefaultMaxPages = 256

// DefaultJitter is the fraction of the TTL by which an entry's lifetime is
// randomly shortened unless SetJitter says otherwise.
const DefaultJitter = 0.1

// NewCache returns a cache under prefix whose entries live for at most ttl.
// List pages turn stale after 4/5 of their lifetime unless SetRefreshAfter
// says otherwise.
func NewCache(rdb goredis.UniversalClient, prefix string, ttl time.Duration) *Cache {
	// The hash tag keeps the generation and the pages in one cluster slot,
	// as the fill script and the invalidation transaction need.
	return &Cache{
		rdb:          rdb,
		prefix:       prefix,
		ttl:          ttl,
		genKey:       prefix + ":{list}:gen",
		pagesKey:     prefix + ":{list}:pages",
		firstKey:     prefix + ":{list}:first",
		maxPages:     DefaultMaxPages,
		jitter:       DefaultJitter,
		refreshAfter: ttl * 4 / 5,
		now:          time.Now,
	}
}

// SetMaxPages bounds how many list pages one generation holds; n < 1 is
// taken as 1.
func (c *Cache) SetMaxPages(n int) { c.maxPages = max(n, 1) }

// SetJitter sets the fraction of the TTL by which each entry's lifetime is
// randomly shortened, clamped to [0, 1).
func (c *Cache) SetJitter(f float64) { c.jitter = min(max(f, 0), 0.99) }

// SetRefreshAfter sets the age at which a list page turns stale (scaled by
// the same draw as its lifetime); 0, or ttl and more, never.
func (c *Cache) SetRefreshAfter(d time.Duration) { c.refreshAfter = d }

func (c *Cache) techKey(id string) string { return c.prefix + ":tech:" + id }

// lifetime draws an entry's lifetime, and the fraction of ttl it is.
func (c *Cache) lifetime() (time.Duration, float64) {
	f := 1 - c.jitter*rand.Float64()
	return time.Duration(float64(c.ttl) * f), f
}

// Page returns the cached bytes of the list page named field, or nil on a
// miss, and the generation to hand to SetPage after a miss (or to refresh
// a stale page). stale says the page is past its soft deadline: serve it,
// and refresh it.
func (c *Cache) Page(ctx context.Context, field string) (val []byte, gen string, stale bool, err error) {
	var vals *goredis.SliceCmd
	var genCmd *goredis.StringCmd
	_, err = c.rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
		vals = p.HMGet(ctx, c.pagesKey, field, "exp:"+field)
		genCmd = p.Get(ctx, c.genKey)
		return nil
	})
	if err != nil && !errors.Is(err, goredis.Nil) {
		return nil, "", false, fmt.Errorf("cache page %s: %w", field, err)
	}
	gen, err = genCmd.Result()
	if errors.Is(err, goredis.Nil) {
		gen = "0"
	} else if err != nil {
		return nil, "", false, fmt.Errorf("cache generation: %w", err)
	}
	v := vals.Val()
	page, ok := v[0].(string)
	if !ok {
		return nil, gen, false, nil
	}
	exp, _ := v[1].(string)
	soft, hard, ok := parseDeadlines(exp)
	if !ok { // filled by a version that kept no deadlines: the hash's TTL bounds it
		return []byte(page), gen, false, nil
	}
	now := c.now().UnixMilli()
	if now >= hard {
		return nil, gen, false, nil
	}
	return []byte(page), gen, now >= soft, nil
}

// parseDeadlines reads "<soft ms>:<hard ms>".
func parseDeadlines(s string) (soft, hard int64, ok bool) {
	a, b, found := strings.Cut(s, ":")
	if !found {
		return 0, 0, false
	}
	soft, err1 := strconv.ParseInt(a, 10, 64)
	hard, err2 := strconv.ParseInt(b, 10, 64)
	return soft, hard, err1 == nil && err2 == nil
}

var fillPage = goredis.NewScript(`
local gen = redis.call('GET', KEYS[1]) or '0'
if gen ~= ARGV[1] then return 0 end
if redis.call('HLEN', KEYS[2]) >= 2 * tonumber(ARGV[5]) and redis.call('HEXISTS', KEYS[2], ARGV[2]) == 0 then return 0 end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3], 'exp:' .. ARGV[2], ARGV[6])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
return 1
`)

// SetPage caches val as the page named field, unless the list changed since
// the generation gen was read or the generation holds its most pages
// already. It reports whether the page was stored. A stale page is
// refreshed the same way: the new fill replaces it, with a new lifetime.
func (c *Cache) SetPage(ctx context.Context, field string, val []byte, gen string) (bool, error) {
	life, f := c.lifetime()
	now := c.now()
	soft := now.Add(life) // never stale, unless refreshAfter is set below ttl
	if c.refreshAfter > 0 && c.refreshAfter < c.ttl {
		soft = now.Add(time.Duration(float64(c.refreshAfter) * f))
	}
	deadlines := strconv.FormatInt(soft.UnixMilli(), 10) + ":" + strconv.FormatInt(now.Add(life).UnixMilli(), 10)
	n, err := fillPage.Run(ctx, c.rdb, []string{c.genKey, c.pagesKey}, gen, field, val, c.ttl.Milliseconds(), c.maxPages, deadlines).Int()
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
	life, _ := c.lifetime()
	if err := c.rdb.Set(ctx, c.techKey(id), val, life).Err(); err != nil {
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
