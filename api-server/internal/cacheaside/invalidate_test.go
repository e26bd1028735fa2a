package cacheaside_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/techlist/techlist"
	"github.com/techlist/techlist/redis"

	"github.com/techlist/api-server/internal/cacheaside"
)

// The real pending index is one.
var _ cacheaside.PendingIndex = (*redis.PendingIndex)(nil)

// fakeIndex records the ids it is told to forget.
type fakeIndex struct {
	mu     sync.Mutex
	forgot []string
	err    error
}

func (f *fakeIndex) Forget(ctx context.Context, ids ...string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.forgot = append(f.forgot, ids...)
	return f.err
}

// invalidatorFixture is a reader with an in-process tier holding one page,
// and an id it remembers as unknown.
type invalidatorFixture struct {
	cache *countingCache
	store *fakeStore
	local *cacheaside.Local
	r     *cacheaside.Reader
	index *fakeIndex
	v     *cacheaside.Invalidator
}

func newInvalidatorFixture(t *testing.T) *invalidatorFixture {
	t.Helper()
	cache := newFakeCache()
	cache.pages["50:"] = []byte(`{"data":[],"next_cursor":null}`)
	f := &invalidatorFixture{
		cache: &countingCache{fakeCache: cache},
		store: &fakeStore{techs: map[string]techlist.Tech{}},
		local: cacheaside.NewLocal(time.Minute, 10),
		index: &fakeIndex{},
	}
	f.r = cacheaside.NewReader(f.cache, f.store, f.local, discard(), nil)
	f.v = cacheaside.NewInvalidator(f.r, f.index, discard())
	ctx := context.Background()
	f.r.List(ctx, 50, "") // into the tier
	if _, err := f.r.Tech(ctx, anID); techlist.ErrorCode(err) != techlist.ENotFound {
		t.Fatalf("unknown id: got %v, want %s", err, techlist.ENotFound)
	}
	return f
}

// listReadsRedis reports whether a list read went past the in-process tier.
func (f *invalidatorFixture) listReadsRedis(t *testing.T) bool {
	t.Helper()
	before := f.cache.pages.Load()
	if _, _, err := f.r.List(context.Background(), 50, ""); err != nil {
		t.Fatalf("List: %v", err)
	}
	return f.cache.pages.Load() > before
}

// TestInvalidatorTechStored: after a tech.created event, the next list read
// does not come from the in-process tier, the id once unknown is read from
// MySQL again (and found), and the id leaves the pending index.
func TestInvalidatorTechStored(t *testing.T) {
	f := newInvalidatorFixture(t)
	if f.listReadsRedis(t) {
		t.Fatal("before the event: a list read went to Redis, want the in-process tier")
	}
	f.store.mu.Lock()
	f.store.techs[anID] = aTech()
	f.store.mu.Unlock()

	f.v.TechStored(context.Background(), techlist.Event{Type: techlist.EventTechCreated, Tech: aTech()})

	if !f.listReadsRedis(t) {
		t.Error("after the event: a list read was served from the in-process tier, want it dropped")
	}
	if res, err := f.r.Tech(context.Background(), anID); err != nil || res.JSON == nil {
		t.Errorf("the stored id after the event: got %+v, %v; want it read from MySQL", res, err)
	}
	f.index.mu.Lock()
	defer f.index.mu.Unlock()
	if !slices.Equal(f.index.forgot, []string{anID}) {
		t.Errorf("pending index forgot %q, want [%s]", f.index.forgot, anID)
	}
}

// TestInvalidatorTechStoredSurvivesAFailedIndex: an index Redis does not
// update still leaves the in-process memory right.
func TestInvalidatorTechStoredSurvivesAFailedIndex(t *testing.T) {
	f := newInvalidatorFixture(t)
	f.index.err = errors.New("connection refused")
	f.v.TechStored(context.Background(), techlist.Event{Type: techlist.EventTechCreated, Tech: techlist.Tech{ID: anID}})
	if !f.listReadsRedis(t) {
		t.Error("a list read was served from the in-process tier, want it dropped")
	}
}

// TestInvalidatorEventsMissed: when events may have been missed, the
// in-process tier is dropped.
func TestInvalidatorEventsMissed(t *testing.T) {
	f := newInvalidatorFixture(t)
	f.v.EventsMissed()
	if !f.listReadsRedis(t) {
		t.Error("after EventsMissed: a list read was served from the in-process tier, want it dropped")
	}
	if len(f.index.forgot) != 0 {
		t.Errorf("EventsMissed touched the pending index: %q", f.index.forgot)
	}
}

// TestInvalidatorWithoutLocalTier: with no in-process tier, both still work.
func TestInvalidatorWithoutLocalTier(t *testing.T) {
	r := cacheaside.NewReader(newFakeCache(), &fakeStore{}, nil, discard(), nil)
	index := &fakeIndex{}
	v := cacheaside.NewInvalidator(r, index, discard())
	v.EventsMissed()
	v.TechStored(context.Background(), techlist.Event{Tech: techlist.Tech{ID: anID}})
	if len(index.forgot) != 1 {
		t.Errorf("pending index forgot %q, want [%s]", index.forgot, anID)
	}
}
