package cacheaside_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/techlist/techlist/testenv"

	"github.com/techlist/api-server/internal/cacheaside"
)

func TestLocalGetSetInvalidate(t *testing.T) {
	l := cacheaside.NewLocal(time.Minute, 10)
	if _, ok := l.Get("50:"); ok {
		t.Fatal("empty tier: got a hit")
	}
	l.Set("50:", []byte("p1"), l.Gen())
	if b, ok := l.Get("50:"); !ok || string(b) != "p1" {
		t.Fatalf("after Set: got %q %v, want p1", b, ok)
	}
	gen := l.Gen()
	l.Invalidate()
	if _, ok := l.Get("50:"); ok {
		t.Error("after Invalidate: got a hit")
	}
	// A reader that looked before the invalidation must not fill after it.
	l.Set("50:", []byte("stale"), gen)
	if _, ok := l.Get("50:"); ok {
		t.Error("a fill with a stale generation was kept")
	}
}

func TestLocalEntriesExpire(t *testing.T) {
	l := cacheaside.NewLocal(10*time.Millisecond, 10)
	l.Set("50:", []byte("p1"), l.Gen())
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, ok := l.Get("50:"); !ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("an entry with a 10ms TTL was still served after 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestLocalIsBounded(t *testing.T) {
	l := cacheaside.NewLocal(time.Minute, 2)
	for _, f := range []string{"a", "b", "c"} {
		l.Set(f, []byte(f), l.Gen())
	}
	held := 0
	for _, f := range []string{"a", "b", "c"} {
		if _, ok := l.Get(f); ok {
			held++
		}
	}
	if held > 2 {
		t.Errorf("holding %d entries, want at most 2", held)
	}
}

// With the tier, a page read from Redis once is served from memory after;
// an invalidation sends the next read back to Redis.
func TestReaderUsesTheLocalTier(t *testing.T) {
	cache, store := newFakeCache(), &fakeStore{}
	cache.pages["50:"] = []byte(`{"data":[],"next_cursor":null}`)
	counting := &countingCache{fakeCache: cache}
	local := cacheaside.NewLocal(time.Minute, 10)
	r := cacheaside.NewReader(counting, store, local, discard(), nil)
	ctx := context.Background()
	for range 3 {
		if _, status, err := r.List(ctx, 50, ""); err != nil || status != cacheaside.Hit {
			t.Fatalf("got %q, %v; want HIT", status, err)
		}
	}
	if n := counting.pages.Load(); n != 1 {
		t.Errorf("Redis page reads for 3 reads: got %d, want 1", n)
	}
	local.Invalidate()
	r.List(ctx, 50, "")
	if n := counting.pages.Load(); n != 2 {
		t.Errorf("Redis page reads after an invalidation: got %d, want 2", n)
	}
	// A miss filled in Redis is kept locally too.
	delete(cache.pages, "50:")
	local.Invalidate()
	if _, status, _ := r.List(ctx, 50, ""); status != cacheaside.Miss {
		t.Fatalf("got %q, want MISS", status)
	}
	cache.fills(t, 1) // the fill lands after the answer
	if _, status, _ := r.List(ctx, 50, ""); status != cacheaside.Hit || counting.pages.Load() != 3 {
		t.Errorf("after a miss: got %q with %d Redis reads, want HIT from memory (3 reads)", status, counting.pages.Load())
	}
}

type countingCache struct {
	*fakeCache
	pages atomic.Int64
}

func (c *countingCache) Page(ctx context.Context, field string) ([]byte, string, bool, error) {
	c.pages.Add(1)
	return c.fakeCache.Page(ctx, field)
}

// gatedCache holds every page read until gate is closed, counting them.
type gatedCache struct {
	*fakeCache
	pages   atomic.Int64
	started chan struct{} // one send per read, before it waits
	gate    chan struct{}
}

func (c *gatedCache) Page(ctx context.Context, field string) ([]byte, string, bool, error) {
	c.pages.Add(1)
	c.started <- struct{}{}
	select {
	case <-c.gate:
	case <-ctx.Done():
		return nil, "", false, ctx.Err()
	}
	return c.fakeCache.Page(ctx, field)
}

// After the in-process tier is dropped, the readers of a page share one
// Redis read, even when the one that started it leaves; a reader after
// the next drop does not join a read that began before it.
func TestReadersAfterADropShareOneRedisRead(t *testing.T) {
	cache := newFakeCache()
	cache.pages["50:"] = []byte(`{"data":[],"next_cursor":null}`)
	gated := &gatedCache{fakeCache: cache, started: make(chan struct{}, 100), gate: make(chan struct{})}
	local := cacheaside.NewLocal(time.Minute, 10)
	r := cacheaside.NewReader(gated, &fakeStore{}, local, discard(), nil)

	leaderCtx, leave := context.WithCancel(context.Background())
	leaderDone := make(chan error, 1)
	go func() { _, _, err := r.List(leaderCtx, 50, ""); leaderDone <- err }()
	<-gated.started // the first reader's read is under way
	results := make(chan cacheaside.Status, 20)
	for range 20 {
		go func() {
			_, status, err := r.List(context.Background(), 50, "")
			if err != nil {
				t.Error(err)
			}
			results <- status
		}()
	}
	testenv.Eventually(t, "the 21 readers waiting on the one read", func() bool { return readingPage() >= 21 })
	leave() // the reader that started the read goes away
	if err := <-leaderDone; err == nil {
		t.Error("the reader that left: got no error")
	}
	local.Invalidate() // a tech.created: a reader now needs a read of its own
	go r.List(context.Background(), 50, "")
	select {
	case <-gated.started:
	case <-time.After(10 * time.Second): // no read of its own: it waits on the gate with the others
		close(gated.gate)
		t.Fatal("the reader after the drop joined the read that began before it")
	}
	close(gated.gate)
	for range 20 {
		if status := <-results; status != cacheaside.Hit {
			t.Errorf("a reader sharing the read: got %q, want HIT", status)
		}
	}
	if n := gated.pages.Load(); n != 2 {
		t.Errorf("Redis page reads: got %d, want 2 (one shared by 21 readers, one after the drop)", n)
	}
}

// readingPage counts the readers inside a shared page read: the one that
// started it and those waiting for it.
func readingPage() int { return framesInStacks("(*Reader).cachedPage(") }

// A reader whose client left is not Redis failing: it neither warns nor
// falls back to MySQL.
func TestReaderThatLeftDoesNotReadMySQL(t *testing.T) {
	cache, store := newFakeCache(), &fakeStore{}
	gated := &gatedCache{fakeCache: cache, started: make(chan struct{}, 1), gate: make(chan struct{})}
	defer close(gated.gate)
	var logs bytes.Buffer
	r := cacheaside.NewReader(gated, store, cacheaside.NewLocal(time.Minute, 10), slog.New(slog.NewTextHandler(&logs, nil)), nil)
	ctx, leave := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { _, _, err := r.List(ctx, 50, ""); done <- err }()
	<-gated.started
	leave()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("got %v, want context.Canceled", err)
	}
	if store.listCalls != 0 || logs.Len() != 0 {
		t.Errorf("after the client left: %d MySQL queries, log %q; want none", store.listCalls, logs.String())
	}
	// A single tech's read too, whether the tech or its pending mark failed.
	cache.techErr = context.Canceled
	if _, err := r.Tech(ctx, anID); !errors.Is(err, context.Canceled) {
		t.Errorf("Tech: got %v, want context.Canceled", err)
	}
	cache.techErr, cache.pendingErr = nil, context.Canceled
	if _, err := r.Tech(ctx, anID); !errors.Is(err, context.Canceled) {
		t.Errorf("Tech, pending mark: got %v, want context.Canceled", err)
	}
	if store.getCalls != 0 || logs.Len() != 0 {
		t.Errorf("after the client left, reading a tech: %d MySQL reads, log %q; want none", store.getCalls, logs.String())
	}
}
