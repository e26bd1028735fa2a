package cacheaside_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/techlist/techlist"
	"github.com/techlist/techlist/mysql"
	"github.com/techlist/techlist/redis"
	"github.com/techlist/techlist/testenv"

	"github.com/techlist/api-server/internal/cacheaside"
)

// commitAfterRead is a Store whose Get, right after it reads, lets the
// worker commit the tech and clear its pending mark: the interleaving in
// which reading MySQL before the pending mark answered 404 for an accepted
// tech.
type commitAfterRead struct {
	cacheaside.Store
	once   sync.Once
	commit func()
}

func (s *commitAfterRead) Get(ctx context.Context, id string) (techlist.Tech, error) {
	t, err := s.Store.Get(ctx, id)
	s.once.Do(s.commit)
	return t, err
}

// TestTechNeverFalse404 runs the worker's commit-then-clear exactly between
// the reader's two reads, on fakes.
func TestTechNeverFalse404(t *testing.T) {
	cache := newFakeCache()
	store := &fakeStore{techs: map[string]techlist.Tech{}}
	cache.pending[anID] = true
	r := cacheaside.NewReader(cache, &commitAfterRead{Store: store, commit: func() {
		store.mu.Lock()
		store.techs[anID] = aTech()
		store.mu.Unlock()
		cache.mu.Lock()
		delete(cache.pending, anID)
		cache.mu.Unlock()
	}}, nil, discard(), nil)

	res, err := r.Tech(context.Background(), anID)
	if err != nil {
		t.Fatalf("an accepted tech committed mid-read: got error %v (%s), want pending or stored", err, techlist.ErrorCode(err))
	}
	if !res.Pending && res.JSON == nil {
		t.Fatalf("got %+v, want pending or stored", res)
	}
	res, err = r.Tech(context.Background(), anID)
	if err != nil || res.Pending || res.JSON == nil {
		t.Fatalf("read after the commit: got %+v, %v; want stored", res, err)
	}
}

// TestTechNeverFalse404OnRealRedisAndMySQL does the same on the real
// adapters: the store wrapper inserts the row and clears the mark the
// moment the reader's MySQL read returns.
func TestTechNeverFalse404OnRealRedisAndMySQL(t *testing.T) {
	rdb, names := testenv.Redis(t)
	cfg, db := testenv.MySQL(t)
	ctx := context.Background()
	store := mysql.NewStore(db, cfg.Table)
	cache := redis.NewCache(rdb, names.Prefix, time.Minute)
	if err := cache.MarkPending(ctx, anID, time.Minute); err != nil {
		t.Fatal(err)
	}
	now := mysql.Now()
	tech := techlist.Tech{ID: anID, Text: "Go", Priority: techlist.PriorityHigh, CreatedAt: now, SubmittedAt: now}
	wrapped := &commitAfterRead{Store: store, commit: func() {
		if _, err := store.Insert(ctx, []techlist.Tech{tech}); err != nil {
			t.Errorf("insert: %v", err)
		}
		if err := cache.ClearPending(ctx, anID); err != nil {
			t.Errorf("clear pending: %v", err)
		}
	}}
	r := cacheaside.NewReader(cache, wrapped, nil, discard(), nil)

	res, err := r.Tech(ctx, anID)
	if err != nil {
		t.Fatalf("an accepted tech committed mid-read: got error %v (%s), want pending or stored", err, techlist.ErrorCode(err))
	}
	if !res.Pending && res.JSON == nil {
		t.Fatalf("got %+v, want pending or stored", res)
	}
	res, err = r.Tech(ctx, anID)
	if err != nil || res.Pending || res.JSON == nil {
		t.Fatalf("read after the commit: got %+v, %v; want stored", res, err)
	}
}

// TestTechNeverFalse404WhenRedisIsDown: a tech accepted (marked pending on
// the real Redis) but not stored, read by an api-server that cannot reach
// Redis, is "cannot tell now" (EUnavailable, a 503), never ENotFound: a 404
// made the client-app call it lost while the worker could still store it.
// Once stored, the same reader answers it from MySQL.
func TestTechNeverFalse404WhenRedisIsDown(t *testing.T) {
	rdb, names := testenv.Redis(t)
	cfg, db := testenv.MySQL(t)
	ctx := context.Background()
	store := mysql.NewStore(db, cfg.Table)
	if err := redis.NewCache(rdb, names.Prefix, time.Minute).MarkPending(ctx, anID, time.Minute); err != nil {
		t.Fatal(err)
	}
	// The api-server's Redis: nothing listens there.
	down := redis.NewClient(redis.Config{Addrs: []string{fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))}})
	t.Cleanup(func() { down.Close() })
	r := cacheaside.NewReader(redis.NewCache(down, names.Prefix, time.Minute), store, nil, discard(), nil)

	for range 2 { // the second read must not be answered from a memory of the first
		res, err := r.Tech(ctx, anID)
		if code := techlist.ErrorCode(err); code != techlist.EUnavailable {
			t.Fatalf("accepted, not stored, Redis unreachable: got %+v, %v (%s); want %s", res, err, code, techlist.EUnavailable)
		}
	}
	now := mysql.Now()
	tech := techlist.Tech{ID: anID, Text: "Go", Priority: techlist.PriorityHigh, CreatedAt: now, SubmittedAt: now}
	if _, err := store.Insert(ctx, []techlist.Tech{tech}); err != nil {
		t.Fatal(err)
	}
	res, err := r.Tech(ctx, anID)
	if err != nil || res.JSON == nil || res.Status != cacheaside.Bypass {
		t.Fatalf("stored, Redis unreachable: got %+v, %v; want the tech, BYPASS", res, err)
	}
}

// TestTechUnknownIDQueriesMySQLOnce reads one unknown id 100 times, one
// after another and then all at once: MySQL is asked at most twice.
func TestTechUnknownIDQueriesMySQLOnce(t *testing.T) {
	cache := newFakeCache()
	store := &fakeStore{techs: map[string]techlist.Tech{}}
	r := cacheaside.NewReader(cache, store, nil, discard(), nil)
	const unknown = "01890a5d-ac96-774b-bcce-b302099a80ff"
	for range 50 {
		if _, err := r.Tech(context.Background(), unknown); techlist.ErrorCode(err) != techlist.ENotFound {
			t.Fatalf("got %v, want %s", err, techlist.ENotFound)
		}
	}
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			if _, err := r.Tech(context.Background(), unknown); techlist.ErrorCode(err) != techlist.ENotFound {
				t.Errorf("got %v, want %s", err, techlist.ENotFound)
			}
		})
	}
	wg.Wait()
	store.mu.Lock()
	defer store.mu.Unlock()
	if store.getCalls > 2 {
		t.Errorf("MySQL reads for 100 GETs of one unknown id: got %d, want at most 2", store.getCalls)
	}
}

// TestTechAbsentNeverHidesAPendingTech: an id remembered as absent that is
// then marked pending (or stored and announced) is answered as it now is.
func TestTechAbsentNeverHidesAPendingTech(t *testing.T) {
	cache := newFakeCache()
	store := &fakeStore{techs: map[string]techlist.Tech{}}
	r := cacheaside.NewReader(cache, store, nil, discard(), nil)
	ctx := context.Background()
	if _, err := r.Tech(ctx, anID); techlist.ErrorCode(err) != techlist.ENotFound {
		t.Fatalf("unknown: got %v, want %s", err, techlist.ENotFound)
	}
	cache.mu.Lock()
	cache.pending[anID] = true
	cache.mu.Unlock()
	if res, err := r.Tech(ctx, anID); err != nil || !res.Pending {
		t.Fatalf("now pending: got %+v, %v; want pending", res, err)
	}
	// Stored and its mark cleared: the tech.created event makes the reader
	// forget the absent entry it may hold.
	r.Forget(anID)
	store.mu.Lock()
	store.techs[anID] = aTech()
	store.mu.Unlock()
	cache.mu.Lock()
	delete(cache.pending, anID)
	cache.mu.Unlock()
	if res, err := r.Tech(ctx, anID); err != nil || res.JSON == nil {
		t.Fatalf("now stored: got %+v, %v; want stored", res, err)
	}
}

// TestTechUnknownIDOnRealMySQL counts the queries MySQL itself ran for 100
// GETs of one unknown id, from its Com_select counter.
func TestTechUnknownIDOnRealMySQL(t *testing.T) {
	rdb, names := testenv.Redis(t)
	cfg, db := testenv.MySQL(t)
	ctx := context.Background()
	store := mysql.NewStore(db, cfg.Table)
	cache := redis.NewCache(rdb, names.Prefix, time.Minute)
	r := cacheaside.NewReader(cache, store, nil, discard(), nil)
	const unknown = "01890a5d-ac96-774b-bcce-b302099a80fe"

	// One connection, so the session counter sees every query.
	db.SetMaxOpenConns(1)
	selects := func() int {
		t.Helper()
		var name string
		var n int
		if err := db.QueryRowContext(ctx, "SHOW SESSION STATUS LIKE 'Com_select'").Scan(&name, &n); err != nil {
			t.Fatalf("read Com_select: %v", err)
		}
		return n
	}
	// What the probe itself adds to the counter, if anything.
	probe := -selects() + selects()
	before := selects()
	for range 100 {
		if _, err := r.Tech(ctx, unknown); techlist.ErrorCode(err) != techlist.ENotFound {
			t.Fatalf("got %v, want %s", err, techlist.ENotFound)
		}
	}
	if got := selects() - before - probe; got > 2 {
		t.Errorf("MySQL SELECTs for 100 GETs of one unknown id: got %d, want at most 2", got)
	}
}

// TestListCacheIsBoundedOnRealRedisAndMySQL reads 500 pages after crafted,
// well-formed cursors: the cache holds at most its cap, and a page it did
// not keep answers MISS each time, never HIT.
func TestListCacheIsBoundedOnRealRedisAndMySQL(t *testing.T) {
	rdb, names := testenv.Redis(t)
	cfg, db := testenv.MySQL(t)
	ctx := context.Background()
	cache := redis.NewCache(rdb, names.Prefix, time.Minute)
	r := cacheaside.NewReader(cache, mysql.NewStore(db, cfg.Table), nil, discard(), nil)
	var last string
	for i := range 500 {
		last = fmt.Sprintf("01890a5d-ac96-774b-bcce-%012x", i)
		if _, status, err := r.List(ctx, 100, last); err != nil || status != cacheaside.Miss {
			t.Fatalf("crafted cursor %d: got %q, %v; want MISS", i, status, err)
		}
	}
	// Each page keeps its deadlines beside it: two fields a page.
	if n := rdb.HLen(ctx, names.Prefix+":{list}:pages").Val() / 2; n > redis.DefaultMaxPages {
		t.Errorf("cached pages after 500 crafted cursors: got %d, want at most %d", n, redis.DefaultMaxPages)
	}
	cacheaside.WaitFills(r) // else the read below may come during the fill, and be answered from memory
	if _, status, err := r.List(ctx, 100, last); err != nil || status != cacheaside.Miss {
		t.Errorf("a page past the cap, read again: got %q, %v; want MISS", status, err)
	}
}
