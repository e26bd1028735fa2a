package redis_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/techlist/techlist/redis"
	"github.com/techlist/techlist/testenv"
)

func pendingID(i int) string { return fmt.Sprintf("01890a5d-ac96-774b-bcce-%012d", i) }

func TestCachePending(t *testing.T) {
	t.Parallel()
	rdb, names := testenv.Redis(t)
	cache := redis.NewCache(rdb, names.Prefix, time.Minute)
	ctx := context.Background()
	id := "01890a5d-ac96-774b-bcce-b302099a8057"

	if p, err := cache.Pending(ctx, id); err != nil || p {
		t.Fatalf("Pending before mark: got %v, %v", p, err)
	}
	if err := cache.MarkPending(ctx, id, time.Minute); err != nil {
		t.Fatal(err)
	}
	if p, err := cache.Pending(ctx, id); err != nil || !p {
		t.Fatalf("Pending after mark: got %v, %v", p, err)
	}
	if err := cache.ClearPending(ctx, id); err != nil {
		t.Fatal(err)
	}
	if p, err := cache.Pending(ctx, id); err != nil || p {
		t.Fatalf("Pending after clear: got %v, %v", p, err)
	}
}

func TestPendingIndexCounts(t *testing.T) {
	t.Parallel()
	rdb, names := testenv.Redis(t)
	cache := redis.NewCache(rdb, names.Prefix, time.Minute)
	idx := redis.NewPendingIndex(cache)
	ctx := context.Background()

	count := func(t *testing.T, want int64) {
		t.Helper()
		got, err := idx.Count(ctx)
		if err != nil {
			t.Fatalf("Count: %v", err)
		}
		if got != want {
			t.Errorf("Count: got %d, want %d", got, want)
		}
	}
	count(t, 0)

	for i := range 5 {
		if err := idx.MarkPending(ctx, pendingID(i), time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	count(t, 5)
	// The marks are the Cache's own, so the reader sees them.
	if ok, err := cache.Pending(ctx, pendingID(0)); err != nil || !ok {
		t.Errorf("Cache.Pending after MarkPending: got %v, %v; want true", ok, err)
	}
	if ok, err := idx.Pending(ctx, pendingID(4)); err != nil || !ok {
		t.Errorf("PendingIndex.Pending: got %v, %v; want true", ok, err)
	}
	if ttl := rdb.PTTL(ctx, names.Prefix+":pending-index").Val(); ttl <= 0 || ttl > time.Hour {
		t.Errorf("index TTL: got %v, want within (0, 1h]", ttl)
	}

	// The api-server gives up on one (the publish failed).
	if err := idx.ClearPending(ctx, pendingID(0)); err != nil {
		t.Fatal(err)
	}
	count(t, 4)

	// The worker clears two marks through the Cache, as it does; Count
	// notices without being told.
	if err := cache.ClearPending(ctx, pendingID(1), pendingID(2)); err != nil {
		t.Fatal(err)
	}
	count(t, 2)

	// The api-server forgets one on its tech.created event.
	if err := cache.ClearPending(ctx, pendingID(3)); err != nil {
		t.Fatal(err)
	}
	if err := idx.Forget(ctx, pendingID(3)); err != nil {
		t.Fatal(err)
	}
	if n := rdb.ZCard(ctx, names.Prefix+":pending-index").Val(); n != 1 {
		t.Errorf("index size after Forget: got %d, want 1", n)
	}
	count(t, 1)
	if err := idx.Forget(ctx); err != nil {
		t.Errorf("Forget of nothing: %v", err)
	}
}

// A mark that expired is no longer counted, even though nobody cleared it.
func TestPendingIndexDropsExpired(t *testing.T) {
	t.Parallel()
	rdb, names := testenv.Redis(t)
	idx := redis.NewPendingIndex(redis.NewCache(rdb, names.Prefix, time.Minute))
	ctx := context.Background()
	if err := idx.MarkPending(ctx, pendingID(1), time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := idx.MarkPending(ctx, pendingID(2), 50*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	time.Sleep(120 * time.Millisecond)
	if n, err := idx.Count(ctx); err != nil || n != 1 {
		t.Errorf("Count: got %d, %v; want 1", n, err)
	}
}

// When the worker stored many techs while nobody forgot them, Count checks
// the oldest members batch after batch and drops every stale one.
func TestPendingIndexManyStale(t *testing.T) {
	t.Parallel()
	rdb, names := testenv.Redis(t)
	cache := redis.NewCache(rdb, names.Prefix, time.Minute)
	idx := redis.NewPendingIndex(cache)
	ctx := context.Background()
	const total, stored = 700, 650
	var ids []string
	for i := range total {
		id := pendingID(i)
		ids = append(ids, id)
		if err := idx.MarkPending(ctx, id, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	if err := cache.ClearPending(ctx, ids[:stored]...); err != nil {
		t.Fatal(err)
	}
	if n, err := idx.Count(ctx); err != nil || n != total-stored {
		t.Errorf("Count: got %d, %v; want %d", n, err, total-stored)
	}
}
