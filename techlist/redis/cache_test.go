package redis_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/techlist/techlist/redis"
	"github.com/techlist/techlist/testenv"
)

func TestCachePageFillAndInvalidate(t *testing.T) {
	t.Parallel()
	rdb, names := testenv.Redis(t)
	cache := redis.NewCache(rdb, names.Prefix, time.Minute)
	ctx := context.Background()

	val, gen, _, err := cache.Page(ctx, "50:")
	if err != nil || val != nil {
		t.Fatalf("first read: got %q, %v; want a miss", val, err)
	}
	if ok, err := cache.SetPage(ctx, "50:", []byte("page-1"), gen); err != nil || !ok {
		t.Fatalf("SetPage: got %v, %v; want stored", ok, err)
	}
	val, _, _, err = cache.Page(ctx, "50:")
	if err != nil || string(val) != "page-1" {
		t.Fatalf("after fill: got %q, %v; want page-1", val, err)
	}
	ttl := rdb.PTTL(ctx, names.Prefix+":{list}:pages").Val()
	if ttl <= 0 || ttl > time.Minute {
		t.Errorf("pages TTL: got %v, want within (0, 1m]", ttl)
	}

	if err := cache.InvalidateLists(ctx); err != nil {
		t.Fatal(err)
	}
	val, _, _, err = cache.Page(ctx, "50:")
	if err != nil || val != nil {
		t.Fatalf("after invalidation: got %q, %v; want a miss", val, err)
	}
}

// A reader that missed before a write must not fill the cache after the
// write's invalidation: its data may predate the write.
func TestCacheStaleFillIsRefused(t *testing.T) {
	t.Parallel()
	rdb, names := testenv.Redis(t)
	cache := redis.NewCache(rdb, names.Prefix, time.Minute)
	ctx := context.Background()

	_, gen, _, err := cache.Page(ctx, "50:")
	if err != nil {
		t.Fatal(err)
	}
	if err := cache.InvalidateLists(ctx); err != nil { // the worker commits meanwhile
		t.Fatal(err)
	}
	ok, err := cache.SetPage(ctx, "50:", []byte("old"), gen)
	if err != nil {
		t.Fatal(err)
	}
	if ok {
		t.Error("SetPage with a stale generation: got stored, want refused")
	}
	if val, _, _, _ := cache.Page(ctx, "50:"); val != nil {
		t.Errorf("got cached %q, want a miss", val)
	}
}

func TestCacheTech(t *testing.T) {
	t.Parallel()
	rdb, names := testenv.Redis(t)
	cache := redis.NewCache(rdb, names.Prefix, time.Minute)
	ctx := context.Background()
	id := "01890a5d-ac96-774b-bcce-b302099a8057"

	if b, err := cache.Tech(ctx, id); err != nil || b != nil {
		t.Fatalf("Tech miss: got %q, %v", b, err)
	}
	if err := cache.SetTech(ctx, id, []byte(`{"id":"x"}`)); err != nil {
		t.Fatal(err)
	}
	if b, err := cache.Tech(ctx, id); err != nil || string(b) != `{"id":"x"}` {
		t.Fatalf("Tech hit: got %q, %v", b, err)
	}
}

// Crafted cursors must not grow the page hash without bound: past the cap
// a fill is refused, and the pages already held stay.
func TestCachePagesAreCapped(t *testing.T) {
	t.Parallel()
	rdb, names := testenv.Redis(t)
	cache := redis.NewCache(rdb, names.Prefix, time.Minute)
	cache.SetMaxPages(50)
	ctx := context.Background()
	stored := 0
	for i := range 500 {
		field := fmt.Sprintf("100:01890a5d-ac96-774b-bcce-%012x", i)
		_, gen, _, err := cache.Page(ctx, field)
		if err != nil {
			t.Fatal(err)
		}
		ok, err := cache.SetPage(ctx, field, []byte("page"), gen)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			stored++
		}
	}
	// Each page has its deadlines beside it, so the hash holds two fields a page.
	if n := rdb.HLen(ctx, names.Prefix+":{list}:pages").Val() / 2; n > 50 || stored != int(n) {
		t.Errorf("after 500 crafted cursors: hash holds %d pages, %d fills reported stored; want both at most 50 and equal", n, stored)
	}
	// A page already held may be refilled at the cap.
	field := "100:01890a5d-ac96-774b-bcce-000000000000"
	_, gen, _, _ := cache.Page(ctx, field)
	if ok, err := cache.SetPage(ctx, field, []byte("again"), gen); err != nil || !ok {
		t.Errorf("refill of a held page at the cap: got %v, %v; want stored", ok, err)
	}
	// A new generation starts empty.
	if err := cache.InvalidateLists(ctx); err != nil {
		t.Fatal(err)
	}
	_, gen, _, _ = cache.Page(ctx, "100:")
	if ok, err := cache.SetPage(ctx, "100:", []byte("first"), gen); err != nil || !ok {
		t.Errorf("fill after invalidation: got %v, %v; want stored", ok, err)
	}
}

// clock is a settable time for the cache's deadlines.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// A page is fresh, then stale (still served) past its soft deadline, then
// a miss past its hard one; a refill makes it fresh again.
func TestCachePageSoftAndHardDeadlines(t *testing.T) {
	t.Parallel()
	rdb, names := testenv.Redis(t)
	cache := redis.NewCache(rdb, names.Prefix, time.Minute)
	cache.SetJitter(0)
	cache.SetRefreshAfter(40 * time.Second)
	clk := &clock{t: time.Now()}
	redis.SetNow(cache, clk.now)
	ctx := context.Background()

	read := func(wantVal string, wantStale bool) string {
		t.Helper()
		val, gen, stale, err := cache.Page(ctx, "50:")
		if err != nil || string(val) != wantVal || stale != wantStale {
			t.Fatalf("got %q, stale %v, %v; want %q, stale %v", val, stale, err, wantVal, wantStale)
		}
		return gen
	}
	gen := read("", false)
	if ok, err := cache.SetPage(ctx, "50:", []byte("page"), gen); err != nil || !ok {
		t.Fatalf("SetPage: %v, %v", ok, err)
	}
	read("page", false)
	clk.add(39 * time.Second)
	read("page", false)
	clk.add(2 * time.Second) // 41 s: past the soft deadline
	gen = read("page", true)
	if ok, err := cache.SetPage(ctx, "50:", []byte("refreshed"), gen); err != nil || !ok {
		t.Fatalf("refresh: %v, %v", ok, err)
	}
	read("refreshed", false)
	clk.add(61 * time.Second) // past the refreshed page's hard deadline
	read("", false)
}

// Each fill's lifetime falls within [ttl·(1−jitter), ttl], and the draws
// differ, so pages filled together do not expire together.
func TestCachePageLifetimeJitter(t *testing.T) {
	t.Parallel()
	rdb, names := testenv.Redis(t)
	const ttl, jitter = time.Minute, 0.25
	cache := redis.NewCache(rdb, names.Prefix, ttl)
	cache.SetJitter(jitter)
	cache.SetRefreshAfter(30 * time.Second)
	now := time.Now()
	redis.SetNow(cache, func() time.Time { return now })
	ctx := context.Background()
	lifetimes := map[int64]bool{}
	for i := range 200 {
		field := fmt.Sprintf("%d:", i+1)
		_, gen, _, err := cache.Page(ctx, field)
		if err != nil {
			t.Fatal(err)
		}
		if ok, err := cache.SetPage(ctx, field, []byte("p"), gen); err != nil || !ok {
			t.Fatalf("SetPage: %v, %v", ok, err)
		}
		exp := rdb.HGet(ctx, names.Prefix+":{list}:pages", "exp:"+field).Val()
		var soft, hard int64
		if _, err := fmt.Sscanf(exp, "%d:%d", &soft, &hard); err != nil {
			t.Fatalf("deadlines %q: %v", exp, err)
		}
		life, refresh := hard-now.UnixMilli(), soft-now.UnixMilli()
		minLife := int64(float64(ttl.Milliseconds()) * (1 - jitter))
		if life < minLife-1 || life > ttl.Milliseconds() {
			t.Errorf("lifetime %d ms, want within [%d, %d]", life, minLife, ttl.Milliseconds())
		}
		if refresh < int64(30_000*(1-jitter))-1 || refresh > 30_000 || refresh >= life {
			t.Errorf("soft deadline after %d ms, want within [%d, 30000] and before the hard one (%d)", refresh, int64(30_000*(1-jitter)), life)
		}
		lifetimes[life] = true
	}
	if len(lifetimes) < 100 {
		t.Errorf("200 fills drew %d distinct lifetimes; want them spread", len(lifetimes))
	}
	techTTL := func() time.Duration {
		if err := cache.SetTech(ctx, "x", []byte("{}")); err != nil {
			t.Fatal(err)
		}
		return rdb.PTTL(ctx, names.Prefix+":tech:x").Val()
	}
	if d := techTTL(); d > ttl || d < time.Duration(float64(ttl)*(1-jitter))-time.Second {
		t.Errorf("tech TTL %v, want within [%v, %v]", d, time.Duration(float64(ttl)*(1-jitter)), ttl)
	}
}
