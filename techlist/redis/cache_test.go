package redis_test

import (
	"context"
	"fmt"
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

	val, gen, err := cache.Page(ctx, "50:")
	if err != nil || val != nil {
		t.Fatalf("first read: got %q, %v; want a miss", val, err)
	}
	if ok, err := cache.SetPage(ctx, "50:", []byte("page-1"), gen); err != nil || !ok {
		t.Fatalf("SetPage: got %v, %v; want stored", ok, err)
	}
	val, _, err = cache.Page(ctx, "50:")
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
	val, _, err = cache.Page(ctx, "50:")
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

	_, gen, err := cache.Page(ctx, "50:")
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
	if val, _, _ := cache.Page(ctx, "50:"); val != nil {
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
		_, gen, err := cache.Page(ctx, field)
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
	if n := rdb.HLen(ctx, names.Prefix+":{list}:pages").Val(); n > 50 || stored != int(n) {
		t.Errorf("after 500 crafted cursors: hash holds %d pages, %d fills reported stored; want both at most 50 and equal", n, stored)
	}
	// A page already held may be refilled at the cap.
	field := "100:01890a5d-ac96-774b-bcce-000000000000"
	_, gen, _ := cache.Page(ctx, field)
	if ok, err := cache.SetPage(ctx, field, []byte("again"), gen); err != nil || !ok {
		t.Errorf("refill of a held page at the cap: got %v, %v; want stored", ok, err)
	}
	// A new generation starts empty.
	if err := cache.InvalidateLists(ctx); err != nil {
		t.Fatal(err)
	}
	_, gen, _ = cache.Page(ctx, "100:")
	if ok, err := cache.SetPage(ctx, "100:", []byte("first"), gen); err != nil || !ok {
		t.Errorf("fill after invalidation: got %v, %v; want stored", ok, err)
	}
}
