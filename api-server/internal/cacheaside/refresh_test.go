package cacheaside_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/techlist/techlist"
	"github.com/techlist/techlist/mysql"
	"github.com/techlist/techlist/redis"
	"github.com/techlist/techlist/testenv"

	"github.com/techlist/api-server/internal/cacheaside"
)

// A stale page is answered at once, as a HIT, by every reader, while one
// refresh (one MySQL query) fills it again in the background.
func TestListStalePageServedWhileOneRefreshRuns(t *testing.T) {
	const readers = 16
	store := &fakeStore{page: techlist.Page{Data: []techlist.Tech{aTech()}}, release: make(chan struct{})}
	cache := newFakeCache()
	cache.pages["50:"], cache.stale["50:"] = []byte("stale page"), true
	r := cacheaside.NewReader(cache, store, nil, discard(), nil)

	var wg sync.WaitGroup
	for range readers {
		wg.Go(func() {
			b, status, err := r.List(context.Background(), 50, "")
			if err != nil || status != cacheaside.Hit || string(b) != "stale page" {
				t.Errorf("reader got %s, %q, %v; want the stale page, HIT", b, status, err)
			}
		})
	}
	wg.Wait() // every reader answered while the refresh's query is held
	close(store.release)
	cache.fills(t, 1) // the refresh filled the page
	if n, counted := store.calls(), r.ListQueries(); n != 1 || counted != 1 {
		t.Errorf("store.List calls: got %d, counted %d; want 1", n, counted)
	}
	b, status, err := r.List(context.Background(), 50, "")
	if want := listJSON(t, store.page); err != nil || status != cacheaside.Hit || !bytes.Equal(b, want) {
		t.Errorf("after the refresh: got %s, %q, %v; want %s, HIT", b, status, err, want)
	}
}

// While MySQL fails, a stale page is still served (until its hard
// deadline, when it is a miss and the read fails), every refresh is tried
// again, and the failure is logged once, not once per read.
func TestListRefreshFailureServesStaleAndLogsOnce(t *testing.T) {
	store := &fakeStore{listErr: errDown}
	cache := newFakeCache()
	cache.pages["50:"], cache.stale["50:"] = []byte("stale page"), true
	logs := &testenv.Buffer{}
	r := cacheaside.NewReader(cache, store, nil, slog.New(slog.NewTextHandler(logs, nil)), nil)

	// Each stale read starts a refresh unless one is running: read until
	// five have been tried.
	testenv.Eventually(t, "five refreshes tried", func() bool {
		b, status, err := r.List(context.Background(), 50, "")
		if err != nil || status != cacheaside.Hit || string(b) != "stale page" {
			t.Fatalf("got %s, %q, %v; want the stale page, HIT", b, status, err)
		}
		return store.calls() >= 5
	})
	testenv.Eventually(t, "the last refresh ended", func() bool { return strings.Count(logs.String(), "cache refresh failed") > 0 })
	if n := strings.Count(logs.String(), "cache refresh failed"); n != 1 {
		t.Errorf("refresh failures logged %d times, want once:\n%s", n, logs.String())
	}

	cache.mu.Lock()
	delete(cache.pages, "50:") // past the hard deadline: gone
	cache.mu.Unlock()
	if _, _, err := r.List(context.Background(), 50, ""); techlist.ErrorCode(err) != techlist.EUnavailable {
		t.Errorf("after the hard deadline with MySQL down: got %v, want %s", err, techlist.EUnavailable)
	}
}

// countingStore counts the list queries that reach the real MySQL.
type countingStore struct {
	*mysql.Store
	lists atomic.Int64
}

func (s *countingStore) List(ctx context.Context, limit int, cursor string) (techlist.Page, error) {
	s.lists.Add(1)
	return s.Store.List(ctx, limit, cursor)
}

// On the real Redis and MySQL, many concurrent readers of pages past their
// soft deadline, then past their hard one, cost at most one SELECT a page
// each time. (The test waits for the deadlines to pass: 1 s, then 3 s.)
func TestListExpiryCostsOneQueryPerPage(t *testing.T) {
	rdb, names := testenv.Redis(t)
	cfg, db := testenv.MySQL(t)
	ctx := context.Background()
	store := &countingStore{Store: mysql.NewStore(db, cfg.Table)}
	now := mysql.Now()
	var techs []techlist.Tech
	for i := range 30 {
		techs = append(techs, techlist.Tech{ID: fmt.Sprintf("01890a5d-ac96-774b-bcce-%012d", i), Text: fmt.Sprintf("tech %d", i),
			Priority: techlist.PriorityLow, CreatedAt: now, SubmittedAt: now})
	}
	if _, err := store.Insert(ctx, techs); err != nil {
		t.Fatal(err)
	}
	cache := redis.NewCache(rdb, names.Prefix, 3*time.Second)
	cache.SetJitter(0)
	cache.SetRefreshAfter(time.Second)
	r := cacheaside.NewReader(cache, store, nil, discard(), nil)
	limits := []int{5, 10, 20}
	fresh := func() bool {
		for _, l := range limits {
			val, _, stale, err := cache.Page(ctx, fmt.Sprintf("%d:", l))
			if err != nil || val == nil || stale {
				return false
			}
		}
		return true
	}
	burst := func(what string) {
		t.Helper()
		before := store.lists.Load()
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range 48 {
			wg.Go(func() {
				<-start
				if _, _, err := r.List(ctx, limits[i%len(limits)], ""); err != nil {
					t.Errorf("%s: %v", what, err)
				}
			})
		}
		close(start)
		wg.Wait()
		testenv.Eventually(t, what+": every page fresh again", fresh)
		if n := store.lists.Load() - before; n > int64(len(limits)) {
			t.Errorf("%s: %d SELECTs for %d pages, want at most one a page", what, n, len(limits))
		}
	}
	for _, l := range limits { // the first fills
		if _, _, err := r.List(ctx, l, ""); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(1100 * time.Millisecond)
	burst("stale pages")
	time.Sleep(3100 * time.Millisecond)
	burst("expired pages")
}
