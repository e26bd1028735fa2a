package cacheaside_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/techlist/techlist"
	"github.com/techlist/techlist/mysql"
	"github.com/techlist/techlist/redis"
	"github.com/techlist/techlist/testenv"

	"github.com/techlist/api-server/internal/cacheaside"
)

// The real adapters satisfy the interfaces the reader declares.
var (
	_ cacheaside.Cache = (*redis.Cache)(nil)
	_ cacheaside.Store = (*mysql.Store)(nil)
)

var errDown = errors.New("connection refused")

type setPage struct {
	field, val, gen string
}

// fakeCache is an in-memory cache whose every call can fail.
type fakeCache struct {
	mu         sync.Mutex
	pages      map[string][]byte
	stale      map[string]bool // pages past their soft deadline
	gen        string
	pageErr    error
	setPageErr error
	setPages   []setPage
	techs      map[string][]byte
	techErr    error
	setTechs   map[string][]byte
	pending    map[string]bool
	pendingErr error
}

func newFakeCache() *fakeCache {
	return &fakeCache{
		pages: map[string][]byte{}, stale: map[string]bool{}, gen: "0",
		techs: map[string][]byte{}, setTechs: map[string][]byte{}, pending: map[string]bool{},
	}
}

func (c *fakeCache) Page(ctx context.Context, field string) ([]byte, string, bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pageErr != nil {
		return nil, "", false, c.pageErr
	}
	return c.pages[field], c.gen, c.stale[field], nil
}

func (c *fakeCache) SetPage(ctx context.Context, field string, val []byte, gen string) (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.setPages = append(c.setPages, setPage{field, string(val), gen})
	if c.setPageErr != nil {
		return false, c.setPageErr
	}
	if gen != c.gen {
		return false, nil
	}
	c.pages[field] = val
	delete(c.stale, field)
	return true, nil
}

// fills waits until the cache saw n fills (a miss fills after answering)
// and returns them.
func (c *fakeCache) fills(t *testing.T, n int) []setPage {
	t.Helper()
	testenv.Eventually(t, fmt.Sprintf("%d cache fills", n), func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return len(c.setPages) >= n
	})
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.setPages)
}

func (c *fakeCache) Tech(ctx context.Context, id string) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.techErr != nil {
		return nil, c.techErr
	}
	return c.techs[id], nil
}

func (c *fakeCache) SetTech(ctx context.Context, id string, val []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.setTechs[id] = val
	return nil
}

func (c *fakeCache) Pending(ctx context.Context, id string) (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pendingErr != nil {
		return false, c.pendingErr
	}
	return c.pending[id], nil
}

// fakeStore answers from memory; with release set, List waits for it.
type fakeStore struct {
	mu        sync.Mutex
	page      techlist.Page
	listErr   error
	listCalls int
	gotLimit  int
	gotCursor string
	release   chan struct{}
	techs     map[string]techlist.Tech
	getErr    error
	getCalls  int
}

func (s *fakeStore) List(ctx context.Context, limit int, cursor string) (techlist.Page, error) {
	s.mu.Lock()
	s.listCalls++
	s.gotLimit, s.gotCursor = limit, cursor
	release := s.release
	s.mu.Unlock()
	if release != nil {
		<-release
	}
	if err := ctx.Err(); err != nil {
		return techlist.Page{}, err
	}
	if s.listErr != nil {
		return techlist.Page{}, s.listErr
	}
	return s.page, nil
}

func (s *fakeStore) Get(ctx context.Context, id string) (techlist.Tech, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.getCalls++
	if s.getErr != nil {
		return techlist.Tech{}, s.getErr
	}
	t, ok := s.techs[id]
	if !ok {
		return techlist.Tech{}, techlist.Errorf(techlist.ENotFound, "no tech with id %s", id)
	}
	return t, nil
}

func (s *fakeStore) calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.listCalls
}

// observer records what the reader reports.
type observer struct {
	mu   sync.Mutex
	seen []string
}

func (o *observer) CacheResult(kind string, s cacheaside.Status) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.seen = append(o.seen, kind+" "+string(s))
}

func (o *observer) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return strings.Join(o.seen, ",")
}

const anID = "01890a5d-ac96-774b-bcce-b302099a8057"

func aTech() techlist.Tech {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	return techlist.Tech{ID: anID, Text: "Go", Priority: techlist.PriorityHigh, CreatedAt: at, SubmittedAt: at}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// listJSON is what List returns for page: its JSON, with "cached":true.
func listJSON(t *testing.T, page techlist.Page) []byte {
	t.Helper()
	b := mustJSON(t, page)
	return append(b[:len(b)-1], `,"cached":true}`...)
}

func sameTech(a, b techlist.Tech) bool {
	return a.ID == b.ID && a.Text == b.Text && a.Priority == b.Priority &&
		a.CreatedAt.Equal(b.CreatedAt) && a.SubmittedAt.Equal(b.SubmittedAt)
}

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestListHit(t *testing.T) {
	cache, store, obs := newFakeCache(), &fakeStore{}, &observer{}
	cache.pages["50:"] = []byte(`{"data":[],"next_cursor":null,"cached":true}`)
	r := cacheaside.NewReader(cache, store, nil, discard(), obs)

	b, status, err := r.List(context.Background(), 50, "")
	if err != nil || status != cacheaside.Hit || string(b) != `{"data":[],"next_cursor":null,"cached":true}` {
		t.Fatalf("got %s, %q, %v; want the cached page, HIT, nil", b, status, err)
	}
	if n := store.calls(); n != 0 {
		t.Errorf("store.List calls: got %d, want 0", n)
	}
	if got := obs.String(); got != "list HIT" {
		t.Errorf("observed: got %q, want %q", got, "list HIT")
	}
}

func TestListMissFillsWithTheGenerationRead(t *testing.T) {
	tests := []struct {
		limit  int
		cursor string
		field  string
	}{
		{50, "", "50:"},
		{10, anID, "10:" + anID},
	}
	for _, tt := range tests {
		t.Run(tt.field, func(t *testing.T) {
			next := anID
			cache, obs := newFakeCache(), &observer{}
			cache.gen = "7"
			store := &fakeStore{page: techlist.Page{Data: []techlist.Tech{aTech()}, NextCursor: &next}}
			r := cacheaside.NewReader(cache, store, nil, discard(), obs)

			b, status, err := r.List(context.Background(), tt.limit, tt.cursor)
			if err != nil || status != cacheaside.Miss {
				t.Fatalf("got %q, %v; want MISS, nil", status, err)
			}
			want := listJSON(t, store.page)
			if !bytes.Equal(b, want) {
				t.Errorf("page:\ngot  %s\nwant %s", b, want)
			}
			if store.gotLimit != tt.limit || store.gotCursor != tt.cursor {
				t.Errorf("store.List got (%d, %q), want (%d, %q)", store.gotLimit, store.gotCursor, tt.limit, tt.cursor)
			}
			wantFill := []setPage{{tt.field, string(want), "7"}}
			if fills := cache.fills(t, 1); len(fills) != 1 || fills[0] != wantFill[0] {
				t.Errorf("fills: got %+v, want %+v", fills, wantFill)
			}
			if got := obs.String(); got != "list MISS" {
				t.Errorf("observed: got %q, want %q", got, "list MISS")
			}

			// The next read is a hit.
			if _, status, _ := r.List(context.Background(), tt.limit, tt.cursor); status != cacheaside.Hit {
				t.Errorf("second read: got %q, want HIT", status)
			}
		})
	}
}

func TestListEmptyPageIsAnArray(t *testing.T) {
	store := &fakeStore{page: techlist.Page{Data: []techlist.Tech{}}}
	r := cacheaside.NewReader(newFakeCache(), store, nil, discard(), nil)
	b, _, err := r.List(context.Background(), 50, "")
	if err != nil || string(b) != `{"data":[],"next_cursor":null,"cached":true}` {
		t.Errorf("got %s, %v; want an empty data array and a null cursor", b, err)
	}
}

func TestListFailedFillStillAnswers(t *testing.T) {
	cache := newFakeCache()
	cache.setPageErr = errDown
	store := &fakeStore{page: techlist.Page{Data: []techlist.Tech{aTech()}}}
	r := cacheaside.NewReader(cache, store, nil, discard(), nil)
	b, status, err := r.List(context.Background(), 50, "")
	if err != nil || status != cacheaside.Miss || !bytes.Equal(b, listJSON(t, store.page)) {
		t.Errorf("got %s, %q, %v; want the page, MISS, nil", b, status, err)
	}
}

func TestListRedisDownBypasses(t *testing.T) {
	cache, obs := newFakeCache(), &observer{}
	cache.pageErr = errDown
	store := &fakeStore{page: techlist.Page{Data: []techlist.Tech{aTech()}}}
	r := cacheaside.NewReader(cache, store, nil, discard(), obs)

	b, status, err := r.List(context.Background(), 50, "")
	if err != nil || status != cacheaside.Bypass {
		t.Fatalf("got %q, %v; want BYPASS, nil", status, err)
	}
	if !bytes.Equal(b, listJSON(t, store.page)) {
		t.Errorf("page: got %s, want the store's", b)
	}
	if len(cache.setPages) != 0 {
		t.Errorf("fills: got %+v, want none", cache.setPages)
	}
	if got := obs.String(); got != "list BYPASS" {
		t.Errorf("observed: got %q, want %q", got, "list BYPASS")
	}
}

func TestListMySQLDownIsUnavailable(t *testing.T) {
	tests := []struct {
		name    string
		pageErr error
	}{
		{"after a miss", nil},
		{"with Redis down too", errDown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cache := newFakeCache()
			cache.pageErr = tt.pageErr
			store := &fakeStore{listErr: errors.New("dial tcp 127.0.0.1:3306: connection refused")}
			r := cacheaside.NewReader(cache, store, nil, discard(), nil)
			b, _, err := r.List(context.Background(), 50, "")
			if got := techlist.ErrorCode(err); got != techlist.EUnavailable {
				t.Fatalf("error code: got %q (%v), want %q", got, err, techlist.EUnavailable)
			}
			if !errors.Is(err, store.listErr) {
				t.Errorf("error %v does not wrap the cause", err)
			}
			if b != nil || len(cache.setPages) != 0 {
				t.Errorf("got page %s and fills %+v, want neither", b, cache.setPages)
			}
		})
	}
}

// inFlight counts the readers inside the shared miss: the one that started
// the query and those waiting for it.
func inFlight() int { return framesInStacks("(*missFlight).do(") }

// framesInStacks counts the calls of a function (its frame's name, as a
// stack trace writes it) on the stacks of every goroutine.
func framesInStacks(frame string) int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return strings.Count(string(buf[:n]), frame)
		}
		buf = make([]byte, 2*len(buf))
	}
}

// Concurrent misses of one page share one MySQL query. The store holds the
// query until every reader is inside the shared miss, so none can come late
// and start a second one.
func TestListConcurrentMissesQueryOnce(t *testing.T) {
	const readers = 16
	store := &fakeStore{page: techlist.Page{Data: []techlist.Tech{aTech()}}, release: make(chan struct{})}
	cache := newFakeCache()
	r := cacheaside.NewReader(cache, store, nil, discard(), nil)
	want := listJSON(t, store.page)

	type result struct {
		b      []byte
		status cacheaside.Status
		err    error
	}
	results := make(chan result, readers)
	for range readers {
		go func() {
			b, status, err := r.List(context.Background(), 50, "")
			results <- result{b, status, err}
		}()
	}

	deadline := time.Now().Add(10 * time.Second)
	// Stop early if a second query started: the check below then fails.
	for inFlight() < readers && store.calls() < 2 {
		if time.Now().After(deadline) {
			close(store.release)
			t.Fatalf("only %d of %d readers reached the shared query", inFlight(), readers)
		}
		time.Sleep(time.Millisecond)
	}
	close(store.release)

	for range readers {
		res := <-results
		if res.err != nil || res.status != cacheaside.Miss || !bytes.Equal(res.b, want) {
			t.Errorf("reader got %s, %q, %v; want the page, MISS, nil", res.b, res.status, res.err)
		}
	}
	if n := store.calls(); n != 1 {
		t.Errorf("store.List calls: got %d, want 1", n)
	}
	if fills := cache.fills(t, 1); len(fills) != 1 {
		t.Errorf("fills: got %d, want 1", len(fills))
	}
}

// A reader that gives up must not cancel the query others wait on.
func TestListSharedQueryOutlivesACancelledReader(t *testing.T) {
	store := &fakeStore{page: techlist.Page{Data: []techlist.Tech{aTech()}}, release: make(chan struct{})}
	r := cacheaside.NewReader(newFakeCache(), store, nil, discard(), nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, _, err := r.List(ctx, 50, "")
		done <- err
	}()
	deadline := time.Now().Add(10 * time.Second)
	for store.calls() == 0 {
		if time.Now().After(deadline) {
			close(store.release)
			t.Fatal("the query never started")
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	close(store.release)
	if err := <-done; err != nil {
		t.Errorf("got %v, want the page: the query must not see the reader's cancellation", err)
	}
}

func TestTech(t *testing.T) {
	tech := aTech()
	techJSON := string(mustJSON(t, tech))
	const cachedJSON = `{"id":"cached"}`
	tests := []struct {
		name       string
		cached     bool  // the tech is in the cache
		stored     bool  // the tech is in MySQL
		pending    bool  // the tech is marked pending
		cacheErr   error // Redis fails
		pendingErr error // only the read of the pending mark fails
		storeErr   error // MySQL fails
		wantJSON   string
		wantStatus cacheaside.Status
		wantPend   bool
		wantCode   string // for errors
		wantFill   bool
		wantObs    string
	}{
		{name: "hit", cached: true, stored: true, wantJSON: cachedJSON, wantStatus: cacheaside.Hit, wantObs: "tech HIT"},
		{name: "miss fills", stored: true, wantJSON: techJSON, wantStatus: cacheaside.Miss, wantFill: true, wantObs: "tech MISS"},
		{name: "pending", pending: true, wantPend: true, wantStatus: cacheaside.Miss},
		{name: "stored wins over a stale pending mark", stored: true, pending: true, wantJSON: techJSON, wantStatus: cacheaside.Miss, wantFill: true, wantObs: "tech MISS"},
		{name: "not found", wantCode: techlist.ENotFound},
		{name: "bypass", stored: true, cacheErr: errDown, wantJSON: techJSON, wantStatus: cacheaside.Bypass, wantObs: "tech BYPASS"},
		// Redis down: an accepted tech not stored yet cannot be told from
		// an unknown one, so the answer is "cannot tell now", not 404.
		{name: "bypass not stored", pending: true, cacheErr: errDown, wantCode: techlist.EUnavailable},
		{name: "bypass unknown", cacheErr: errDown, wantCode: techlist.EUnavailable},
		{name: "pending mark unreadable, stored", stored: true, pendingErr: errDown, wantJSON: techJSON, wantStatus: cacheaside.Miss, wantFill: true, wantObs: "tech MISS"},
		{name: "pending mark unreadable, not stored", pending: true, pendingErr: errDown, wantCode: techlist.EUnavailable},
		{name: "mysql down", storeErr: errDown, wantCode: techlist.EUnavailable},
		{name: "both down", cacheErr: errDown, storeErr: errDown, wantCode: techlist.EUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cache, obs := newFakeCache(), &observer{}
			store := &fakeStore{techs: map[string]techlist.Tech{}, getErr: tt.storeErr}
			if tt.cached {
				cache.techs[anID] = []byte(cachedJSON)
			}
			if tt.stored {
				store.techs[anID] = tech
			}
			cache.pending[anID] = tt.pending
			cache.techErr, cache.pendingErr = tt.cacheErr, tt.cacheErr
			if tt.pendingErr != nil {
				cache.pendingErr = tt.pendingErr
			}
			r := cacheaside.NewReader(cache, store, nil, discard(), obs)

			got, err := r.Tech(context.Background(), anID)
			if tt.wantCode != "" {
				if code := techlist.ErrorCode(err); code != tt.wantCode {
					t.Fatalf("error code: got %q (%v), want %q", code, err, tt.wantCode)
				}
			} else {
				if err != nil {
					t.Fatalf("got error %v, want none", err)
				}
				if string(got.JSON) != tt.wantJSON || got.Status != tt.wantStatus || got.Pending != tt.wantPend {
					t.Errorf("got {%s %q pending=%v}, want {%s %q pending=%v}",
						got.JSON, got.Status, got.Pending, tt.wantJSON, tt.wantStatus, tt.wantPend)
				}
			}
			if fill, ok := cache.setTechs[anID]; ok != tt.wantFill || (ok && string(fill) != techJSON) {
				t.Errorf("fill: got %q (filled %v), want filled %v", fill, ok, tt.wantFill)
			}
			if tt.cached && store.getCalls != 0 {
				t.Errorf("store.Get calls on a hit: got %d, want 0", store.getCalls)
			}
			if got := obs.String(); got != tt.wantObs {
				t.Errorf("observed: got %q, want %q", got, tt.wantObs)
			}
		})
	}
}

// TestReaderOnRealRedisAndMySQL reads through the real adapters.
func TestReaderOnRealRedisAndMySQL(t *testing.T) {
	rdb, names := testenv.Redis(t)
	cfg, db := testenv.MySQL(t)
	ctx := context.Background()
	store := mysql.NewStore(db, cfg.Table)
	cache := redis.NewCache(rdb, names.Prefix, time.Minute)
	r := cacheaside.NewReader(cache, store, nil, discard(), nil)

	now := mysql.Now()
	first := techlist.Tech{ID: anID, Text: "Go", Priority: techlist.PriorityHigh, CreatedAt: now, SubmittedAt: now}
	if _, err := store.Insert(ctx, []techlist.Tech{first}); err != nil {
		t.Fatal(err)
	}

	read := func(want cacheaside.Status, wantTexts ...string) {
		t.Helper()
		b, status, err := r.List(ctx, 50, "")
		if err != nil {
			t.Fatalf("List: %v", err)
		}
		if status != want {
			t.Errorf("status: got %q, want %q", status, want)
		}
		var page techlist.Page
		if err := json.Unmarshal(b, &page); err != nil {
			t.Fatalf("page %s: %v", b, err)
		}
		var texts []string
		for _, tech := range page.Data {
			texts = append(texts, tech.Text)
		}
		if strings.Join(texts, ",") != strings.Join(wantTexts, ",") {
			t.Errorf("texts: got %q, want %q", texts, wantTexts)
		}
		if status == cacheaside.Miss { // the fill lands after the answer
			testenv.Eventually(t, "the page filled", func() bool {
				val, _, _, err := cache.Page(ctx, "50:")
				return err == nil && val != nil
			})
		}
	}
	read(cacheaside.Miss, "Go")
	read(cacheaside.Hit, "Go")

	// A write the cache does not know of yet: the cached page is served
	// until the worker invalidates.
	second := techlist.Tech{ID: "01890a5d-ac96-774b-bcce-b302099a8058", Text: "Rust", Priority: techlist.PriorityLow, CreatedAt: now, SubmittedAt: now}
	if _, err := store.Insert(ctx, []techlist.Tech{second}); err != nil {
		t.Fatal(err)
	}
	read(cacheaside.Hit, "Go")
	if err := cache.InvalidateLists(ctx); err != nil {
		t.Fatal(err)
	}
	read(cacheaside.Miss, "Rust", "Go")
	read(cacheaside.Hit, "Rust", "Go")

	// One tech: a miss fills, then a hit; a pending id answers pending.
	for _, want := range []cacheaside.Status{cacheaside.Miss, cacheaside.Hit} {
		res, err := r.Tech(ctx, anID)
		if err != nil || res.Status != want || res.Pending {
			t.Fatalf("Tech: got %+v, %v; want %q", res, err, want)
		}
		var got techlist.Tech
		if err := json.Unmarshal(res.JSON, &got); err != nil || !sameTech(got, first) {
			t.Errorf("Tech: got %+v (%v), want %+v", got, err, first)
		}
	}
	const pendingID = "01890a5d-ac96-774b-bcce-b302099a8059"
	if _, err := r.Tech(ctx, pendingID); techlist.ErrorCode(err) != techlist.ENotFound {
		t.Errorf("unknown id: got %v, want %s", err, techlist.ENotFound)
	}
	if err := cache.MarkPending(ctx, pendingID, time.Minute); err != nil {
		t.Fatal(err)
	}
	if res, err := r.Tech(ctx, pendingID); err != nil || !res.Pending {
		t.Errorf("pending id: got %+v, %v; want pending", res, err)
	}
}

func TestPageJSON(t *testing.T) {
	hit := []byte(`{"data":[],"next_cursor":null,"cached":true}`)
	if got := cacheaside.PageJSON(hit, cacheaside.Hit); string(got) != string(hit) {
		t.Errorf("HIT: got %s", got)
	}
	for _, s := range []cacheaside.Status{cacheaside.Miss, cacheaside.Bypass} {
		if got := string(cacheaside.PageJSON(hit, s)); got != `{"data":[],"next_cursor":null,"cached":false}` {
			t.Errorf("%s: got %s", s, got)
		}
	}
	if string(hit) != `{"data":[],"next_cursor":null,"cached":true}` {
		t.Error("PageJSON changed the cached bytes")
	}
	old := []byte(`{"data":[],"next_cursor":null}`) // cached by an older version
	if got := string(cacheaside.PageJSON(old, cacheaside.Hit)); got != string(hit) {
		t.Errorf("old page, HIT: got %s", got)
	}
	if got := string(cacheaside.PageJSON(old, cacheaside.Miss)); got != `{"data":[],"next_cursor":null,"cached":false}` {
		t.Errorf("old page, MISS: got %s", got)
	}
}
