package redis_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	goredis "github.com/redis/go-redis/v9"
	"github.com/techlist/techlist"
	"github.com/techlist/techlist/mysql"
	"github.com/techlist/techlist/redis"
	"github.com/techlist/techlist/testenv"
)

// source is the worker's store as the prefill sees it, counting its
// SELECTs; failWith fails them, and after runs once each has returned.
type source struct {
	store    *mysql.Store
	calls    atomic.Int32
	failWith error
	page     *techlist.Page // answered instead of the store's, when set
	after    func()
}

func (s *source) List(ctx context.Context, limit int, cursor string) (techlist.Page, error) {
	s.calls.Add(1)
	if s.failWith != nil {
		return techlist.Page{}, s.failWith
	}
	if s.page != nil {
		return *s.page, nil
	}
	page, err := s.store.List(ctx, limit, cursor)
	if s.after != nil {
		s.after()
	}
	return page, err
}

// prefillEnv is a worker's view: the cache, the store and a settler with
// the prefill on.
type prefillEnv struct {
	rdb     goredis.UniversalClient
	cache   *redis.Cache
	store   *mysql.Store
	src     *source
	settler *redis.Settler
	names   testenv.Names
	c       *redis.StreamConsumer
}

func newPrefillEnv(t *testing.T) *prefillEnv {
	t.Helper()
	rdb, names := testenv.Redis(t)
	return newPrefillEnvOn(t, rdb, names)
}

func newPrefillEnvOn(t *testing.T, rdb goredis.UniversalClient, names testenv.Names) *prefillEnv {
	t.Helper()
	cfg, _ := testenv.MySQL(t)
	store, err := mysql.OpenStore(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	e := &prefillEnv{rdb: rdb, cache: redis.NewCache(rdb, names.Prefix, time.Minute), store: store, names: names,
		c: newConsumer(t, rdb, streamConfig(streamName(names), "a"))}
	e.src = &source{store: store}
	e.settler = e.newSettler(t)
	return e
}

func (e *prefillEnv) newSettler(t *testing.T) *redis.Settler {
	t.Helper()
	s, err := redis.NewSettler(e.rdb, e.c, e.cache, redis.NewEventPublisher(e.rdb, redis.EventsChannel(e.names.Channel)))
	if err != nil {
		t.Fatal(err)
	}
	s.Prefill(e.src)
	return s
}

// insert stores n new techs, newer than any before.
func (e *prefillEnv) insert(t *testing.T, n int) {
	t.Helper()
	techs := make([]techlist.Tech, n)
	for i := range techs {
		id, err := uuid.NewV7()
		if err != nil {
			t.Fatal(err)
		}
		now := mysql.Now()
		techs[i] = techlist.Tech{ID: id.String(), Text: fmt.Sprintf("tech %s", id), Priority: techlist.PriorityLow, CreatedAt: now, SubmittedAt: now}
	}
	if _, err := e.store.Insert(context.Background(), techs); err != nil {
		t.Fatal(err)
	}
}

// built is the first page of limit as the api-server builds it from MySQL.
func (e *prefillEnv) built(t *testing.T, limit int, cursor string) []byte {
	t.Helper()
	page, err := e.store.List(context.Background(), limit, cursor)
	if err != nil {
		t.Fatal(err)
	}
	b, err := techlist.AppendCachedPage(nil, page)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// read is a reader's look at the cache, and on a miss its fill, as the
// api-server does it; it returns the page and whether it was a hit.
func (e *prefillEnv) read(t *testing.T, limit int, cursor string) ([]byte, bool) {
	t.Helper()
	field := fmt.Sprintf("%d:%s", limit, cursor)
	ctx := context.Background()
	b, gen, _, err := e.cache.Page(ctx, field)
	if err != nil {
		t.Fatal(err)
	}
	if b != nil {
		return b, true
	}
	b = e.built(t, limit, cursor)
	if _, err := e.cache.SetPage(ctx, field, b, gen); err != nil {
		t.Fatal(err)
	}
	return b, false
}

func (e *prefillEnv) settle(t *testing.T, s *redis.Settler) {
	t.Helper()
	if err := s.Settle(context.Background(), nil, nil, nil); err != nil {
		t.Fatalf("Settle: %v", err)
	}
}

func (e *prefillEnv) gen(t *testing.T) string {
	t.Helper()
	_, gen, _, err := e.cache.Page(context.Background(), "20:")
	if err != nil {
		t.Fatal(err)
	}
	return gen
}

// cached is the page in Redis now, nil if none.
func (e *prefillEnv) cached(t *testing.T, field string) []byte {
	t.Helper()
	b, _, _, err := e.cache.Page(context.Background(), field)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// (a) With a reader's first pages of 20 and 50 cached, a settled batch
// leaves them in Redis, holding the new rows, byte for byte what the
// api-server would build from MySQL, from one SELECT; other pages are
// dropped and the generation is bumped.
func TestSettlePrefillsTheFirstPagesReadersKeep(t *testing.T) {
	t.Parallel()
	e := newPrefillEnv(t)
	e.insert(t, 30)
	e.read(t, 20, "")
	e.read(t, 50, "")
	e.settle(t, e.settler) // learns which first pages readers keep; nothing to refill yet
	if n := e.src.calls.Load(); n != 0 {
		t.Fatalf("a settle before any was seen: %d SELECTs, want 0", n)
	}
	first, _ := e.read(t, 20, "")
	e.read(t, 50, "")
	var next struct {
		NextCursor string `json:"next_cursor"`
	}
	mustUnmarshal(t, first, &next)
	e.read(t, 20, next.NextCursor)

	e.insert(t, 25) // the batch: 55 rows now, so the page of 50 has a cursor
	before := e.gen(t)
	e.settle(t, e.settler)
	for _, limit := range []int{20, 50} {
		field := fmt.Sprintf("%d:", limit)
		if got, want := e.cached(t, field), e.built(t, limit, ""); !bytes.Equal(got, want) {
			t.Errorf("page %s after the settle:\ngot  %s\nwant %s", field, got, want)
		}
	}
	if got := e.cached(t, "20:"+next.NextCursor); got != nil {
		t.Errorf("a later page after the settle: got %s, want dropped", got)
	}
	if after := e.gen(t); after == before {
		t.Errorf("generation %s after the settle: want bumped", after)
	}
	if n := e.src.calls.Load(); n != 1 || e.settler.PrefillQueries() != 1 {
		t.Errorf("SELECTs: %d (counted %d), want 1 for both pages", n, e.settler.PrefillQueries())
	}
	if ttl := e.rdb.PTTL(context.Background(), e.names.Prefix+":{list}:pages").Val(); ttl <= 0 {
		t.Errorf("the pages' TTL after a prefill: %v, want one", ttl)
	}
}

func mustUnmarshal(t *testing.T, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
}

// The pages cut from one SELECT of the largest limit are what the store
// answers for each limit, with as few rows as there are and more.
func TestFirstPageCutsAsTheStoreDoes(t *testing.T) {
	t.Parallel()
	e := newPrefillEnv(t)
	ctx := context.Background()
	total := 0
	for _, n := range []int{0, 1, 19, 20, 21, 49, 50, 51, 60} {
		e.insert(t, n-total)
		total = n
		big, err := e.store.List(ctx, 50, "")
		if err != nil {
			t.Fatal(err)
		}
		for _, limit := range []int{1, 19, 20, 21, 49, 50} {
			got, err := techlist.AppendCachedPage(nil, redis.FirstPage(big, limit))
			if err != nil {
				t.Fatal(err)
			}
			if want := e.built(t, limit, ""); !bytes.Equal(got, want) {
				t.Errorf("%d rows, limit %d: got\n%s\nwant\n%s", n, limit, got, want)
			}
		}
	}
}

// (b) A generation noted before the SELECT that has moved since (another
// batch settled meanwhile): no fill, the pages dropped all the same; the
// next settle refills them.
func TestSettleDoesNotPrefillAfterAnotherInvalidation(t *testing.T) {
	t.Parallel()
	e := newPrefillEnv(t)
	e.insert(t, 5)
	e.read(t, 20, "")
	e.settle(t, e.settler)
	e.read(t, 20, "")
	e.src.after = func() {
		e.src.after = nil
		e.insert(t, 1) // another batch, committed after this SELECT and settled before this script
		if err := e.cache.InvalidateLists(context.Background()); err != nil {
			t.Error(err)
		}
		e.read(t, 20, "") // and a reader's fill of the newest, which this script must not overwrite
	}
	e.settle(t, e.settler)
	if e.src.calls.Load() != 1 {
		t.Fatalf("SELECTs: %d, want 1", e.src.calls.Load())
	}
	if got := e.cached(t, "20:"); got != nil {
		t.Errorf("page after a settle whose SELECT predates another batch: got %s, want none", got)
	}
	// The page's deadline is remembered apart: the next settle refills
	// it though no reader filled it in between.
	e.insert(t, 1)
	e.settle(t, e.settler)
	if got, want := e.cached(t, "20:"), e.built(t, 20, ""); !bytes.Equal(got, want) {
		t.Errorf("page after the next settle: got %s, want %s (refilled)", got, want)
	}
}

// (c) Two settlers race, both having noted one generation: whichever runs
// second fills nothing, so a page read before the other batch's commit
// never outlives that batch's invalidation.
func TestRacingSettlersLeaveNoStalePage(t *testing.T) {
	t.Parallel()
	e := newPrefillEnv(t)
	ctx := context.Background()
	e.insert(t, 3)
	e.read(t, 20, "")
	if _, err := redis.InvalidateAndFill(ctx, e.cache, "", time.Now()); err != nil {
		t.Fatal(err)
	}
	// Settler A read generation g and its page; then batch B commits,
	// B's settler reads g too, and its page (with B's row).
	e.read(t, 20, "")
	g := e.gen(t)
	pageA := e.built(t, 20, "")
	e.insert(t, 1)
	pageB := e.built(t, 20, "")
	for _, order := range []string{"A then B", "B then A"} {
		first, second := pageA, pageB
		if order == "B then A" {
			first, second = pageB, pageA
		}
		e.read(t, 20, "") // a reader's page alive again, at generation g
		if seen, err := redis.InvalidateAndFill(ctx, e.cache, g, time.Now(), "20:", first); err != nil || len(seen) != 1 {
			t.Fatalf("%s, first script: saw %v, %v; want 20:", order, seen, err)
		}
		if _, err := redis.InvalidateAndFill(ctx, e.cache, g, time.Now(), "20:", second); err != nil {
			t.Fatal(err)
		}
		if got := e.cached(t, "20:"); got != nil {
			t.Errorf("%s: page after both: got %s, want none (the second noted a generation that moved)", order, got)
		}
		g = e.gen(t)
	}

	// The same through Settle: A's SELECT returns, then B commits and
	// settles whole before A's script runs.
	a, b := e.settler, e.newSettler(t)
	e.read(t, 20, "")
	e.settle(t, a) // each learns the first page
	e.read(t, 20, "")
	e.settle(t, b)
	e.read(t, 20, "")
	e.src.after = func() {
		e.src.after = nil
		e.insert(t, 1)
		e.settle(t, b)
		if got, want := e.cached(t, "20:"), e.built(t, 20, ""); !bytes.Equal(got, want) {
			t.Errorf("B's prefill: got %s, want %s", got, want)
		}
	}
	e.settle(t, a)
	if got := e.cached(t, "20:"); got != nil {
		t.Errorf("A's page after B settled: got %s, want none", got)
	}
	if got, _ := e.read(t, 20, ""); !bytes.Equal(got, e.built(t, 20, "")) {
		t.Errorf("a reader after both: got %s, want the newest", got)
	}
}

// (d) With no first page cached, or only expired ones, a settle sends no
// SELECT; and a prefilled page keeps its reader's deadline, so once
// nobody reads it, it expires and is no longer refilled.
func TestSettleWithoutReadersSendsNoSelect(t *testing.T) {
	t.Parallel()
	e := newPrefillEnv(t)
	e.insert(t, 3)
	for range 3 {
		e.settle(t, e.settler)
	}
	e.read(t, 20, "x") // a later page only
	e.settle(t, e.settler)
	e.settle(t, e.settler)
	if n := e.src.calls.Load(); n != 0 {
		t.Fatalf("settles with no first page cached: %d SELECTs, want 0", n)
	}

	e.read(t, 20, "")
	e.settle(t, e.settler)
	e.read(t, 20, "")
	e.settle(t, e.settler) // prefills
	if e.cached(t, "20:") == nil || e.src.calls.Load() != 1 {
		t.Fatalf("a prefill: page %q after %d SELECTs, want one page after 1", e.cached(t, "20:"), e.src.calls.Load())
	}
	redis.SetNow(e.cache, func() time.Time { return time.Now().Add(2 * time.Minute) }) // past the page's hard deadline
	e.settle(t, e.settler)
	if got := e.cached(t, "20:"); got != nil {
		t.Errorf("an expired page after a settle: got %s, want none (not refilled)", got)
	}
	e.settle(t, e.settler) // knows of no page now
	if n := e.src.calls.Load(); n != 2 {
		t.Errorf("SELECTs after the page expired: %d, want 2 (one more by the settle that still knew of it)", n)
	}
}

// (e) A prefill that fails (the SELECT, or the page cannot be encoded)
// falls back to the plain invalidation.
func TestFailedPrefillStillInvalidates(t *testing.T) {
	t.Parallel()
	for name, fail := range map[string]func(*source){
		"select": func(s *source) { s.failWith = errors.New("mysql is down") },
		"encode": func(s *source) {
			s.page = &techlist.Page{Data: []techlist.Tech{{ID: "x", CreatedAt: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}}}
		},
	} {
		t.Run(name, func(t *testing.T) {
			e := newPrefillEnv(t)
			e.insert(t, 3)
			e.read(t, 20, "")
			e.settle(t, e.settler)
			e.read(t, 20, "")
			before := e.gen(t)
			fail(e.src)
			e.settle(t, e.settler)
			if e.src.calls.Load() != 1 || e.settler.PrefillFailures() != 1 {
				t.Errorf("SELECTs %d, failures %d; want 1 and 1", e.src.calls.Load(), e.settler.PrefillFailures())
			}
			if got := e.cached(t, "20:"); got != nil {
				t.Errorf("page after a failed prefill: got %s, want invalidated", got)
			}
			if e.gen(t) == before {
				t.Error("generation not bumped after a failed prefill")
			}
		})
	}
}

// On a cluster the settle runs apart (its keys live on several nodes), and
// the prefill rides the invalidation there too: gen and pages share a slot.
func TestSettlePrefillsOnRedisCluster(t *testing.T) {
	t.Parallel()
	rdb := redis.NewClient(redis.Config{Addrs: testenv.RedisCluster(t)})
	defer rdb.Close()
	e := newPrefillEnvOn(t, rdb, testenv.Names{Prefix: "cluster-" + testenv.Suffix(), Channel: "cluster-" + testenv.Suffix()})
	e.insert(t, 3)
	e.read(t, 20, "")
	e.settle(t, e.settler)
	e.read(t, 20, "")
	e.insert(t, 2)
	e.settle(t, e.settler)
	if got, want := e.cached(t, "20:"), e.built(t, 20, ""); !bytes.Equal(got, want) || e.src.calls.Load() != 1 {
		t.Errorf("page after a settle on a cluster, %d SELECTs:\ngot  %s\nwant %s", e.src.calls.Load(), got, want)
	}
}
