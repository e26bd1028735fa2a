package redis

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	goredis "github.com/redis/go-redis/v9"
	"github.com/techlist/techlist"
)

// PageSource reads one page of the newest-first list from the database;
// the worker's *mysql.Store is one.
type PageSource interface {
	List(ctx context.Context, limit int, cursor string) (techlist.Page, error)
}

const (
	// maxPrefillPages bounds how many first pages one settle refills, and
	// maxPrefillLimit the limit of each (the API's largest).
	maxPrefillPages = 8
	maxPrefillLimit = 100
)

// invalidateAndFill is the invalidation (INCR the generation, DEL the
// pages) with the first pages refilled in the same atomic step, so that a
// reader never finds them missing after a write.
//
// KEYS: the generation, the pages, the first pages' deadlines (one slot).
// ARGV: the generation the caller read before its SELECT ("" for none),
// the time in ms, then field/page pairs.
//
// Before the DEL it copies the deadlines of the first pages (fields
// "<limit>:") alive in the hash to the third key, which no invalidation
// drops, and forgets those past their hard deadline; it returns the fields
// it remembers, so the caller learns which first pages readers keep. A
// given page is written only if the generation is still the one read
// before the SELECT: any batch committed after that SELECT bumps the
// generation when it settles, so either this fill is refused or that
// batch's invalidation drops it. A page is written only if remembered, with
// its remembered deadlines: a prefill never makes a page live longer than a
// reader's fill (a miss or a refresh) did, so once nobody reads a page it
// expires, is forgotten and is no longer refilled. Remembered apart from
// the pages, a deadline outlives a refill refused or missed. The hashes
// live until the last remembered hard deadline (a reader's fill renews the
// pages').
var invalidateAndFill = goredis.NewScript(`
local now = tonumber(ARGV[2])
local function hard(e)
  return e and tonumber(string.match(e, '^%d+:(%d+)$'))
end
for _, f in ipairs(redis.call('HKEYS', KEYS[2])) do
  if string.match(f, '^%d+:$') then
    local e = redis.call('HGET', KEYS[2], 'exp:' .. f)
    local h = hard(e)
    if h and h > now then redis.call('HSET', KEYS[3], f, e) end
  end
end
local seen, exps, last = {}, {}, 0
local kept = redis.call('HGETALL', KEYS[3])
for i = 1, #kept, 2 do
  local h = hard(kept[i + 1])
  if h and h > now then
    seen[#seen + 1] = kept[i]
    exps[kept[i]] = kept[i + 1]
    if h > last then last = h end
  else
    redis.call('HDEL', KEYS[3], kept[i])
  end
end
if last > 0 then redis.call('PEXPIRE', KEYS[3], last - now) end
local gen = redis.call('GET', KEYS[1]) or '0'
redis.call('INCR', KEYS[1])
redis.call('DEL', KEYS[2])
if gen ~= ARGV[1] then return seen end
local filled = false
for i = 3, #ARGV - 1, 2 do
  local e = exps[ARGV[i]]
  if e then
    redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1], 'exp:' .. ARGV[i], e)
    filled = true
  end
end
if filled then redis.call('PEXPIRE', KEYS[2], last - now) end
return seen
`)

// prefiller refills the first list pages readers keep, for a Settler.
type prefiller struct {
	rdb    goredis.UniversalClient
	cache  *Cache
	source PageSource
	mu     sync.Mutex
	limits []int // the first pages' limits the last invalidation remembered, ascending
	// queries counts the SELECTs sent, failures the prefills given up.
	queries, failures atomic.Uint64
}

// args returns the invalidation's ARGV: with the first pages the last
// invalidation remembered, read from the database now, or with none (a plain
// invalidation) when none were seen or reading them failed.
func (f *prefiller) args(ctx context.Context) []any {
	now := strconv.FormatInt(f.cache.now().UnixMilli(), 10)
	if f.source == nil {
		return []any{"", now}
	}
	f.mu.Lock()
	limits := f.limits
	f.mu.Unlock()
	if len(limits) == 0 {
		return []any{"", now}
	}
	args, err := f.read(ctx, limits)
	if err != nil {
		f.failures.Add(1)
		return []any{"", now}
	}
	return append([]any{args[0], now}, args[1:]...)
}

// read returns the generation read before the SELECT, then each limit's
// first page as field and bytes, derived from one SELECT of the largest
// limit exactly as the store derives a page (it reads limit+1 rows).
func (f *prefiller) read(ctx context.Context, limits []int) ([]any, error) {
	gen, err := f.rdb.Get(ctx, f.cache.genKey).Result()
	if errors.Is(err, goredis.Nil) {
		gen = "0"
	} else if err != nil {
		return nil, fmt.Errorf("prefill: read the generation: %w", err)
	}
	f.queries.Add(1)
	page, err := f.source.List(ctx, limits[len(limits)-1], "")
	if err != nil {
		return nil, fmt.Errorf("prefill: %w", err)
	}
	args := make([]any, 1, 1+2*len(limits))
	args[0] = gen
	for _, limit := range limits {
		b, err := techlist.AppendCachedPage(make([]byte, 0, 256+192*limit), firstPage(page, limit))
		if err != nil {
			return nil, fmt.Errorf("prefill: encode a page: %w", err)
		}
		args = append(args, strconv.Itoa(limit)+":", b)
	}
	return args, nil
}

// firstPage is the first page of limit rows cut from page, a first page
// read with a limit of limit or more, as the store would answer it.
func firstPage(page techlist.Page, limit int) techlist.Page {
	if len(page.Data) <= limit {
		return page // all there is (a larger page with no more rows has no cursor either)
	}
	next := page.Data[limit-1].ID
	return techlist.Page{Data: page.Data[:limit:limit], NextCursor: &next}
}

// learn keeps the limits of the first pages the invalidation remembers.
func (f *prefiller) learn(fields []string) {
	if f.source == nil {
		return
	}
	limits := make([]int, 0, len(fields))
	for _, field := range fields {
		n, err := strconv.Atoi(strings.TrimSuffix(field, ":"))
		if err == nil && n >= 1 && n <= maxPrefillLimit {
			limits = append(limits, n)
		}
	}
	slices.Sort(limits)
	limits = slices.Compact(limits)
	if len(limits) > maxPrefillPages {
		limits = limits[:maxPrefillPages]
	}
	f.mu.Lock()
	f.limits = limits
	f.mu.Unlock()
}
