package stats_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/techlist/techlist"
	"github.com/techlist/techlist/mysql"
	"github.com/techlist/techlist/redis"
	"github.com/techlist/techlist/testenv"

	"github.com/techlist/api-server/internal/cacheaside"
	"github.com/techlist/api-server/internal/stats"
)

// The counter is an Observer of the reader, and the stream publisher a
// Backlogger.
var (
	_ cacheaside.Observer = (*stats.CacheCounter)(nil)
	_ stats.Backlogger    = (*redis.StreamPublisher)(nil)
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

type recordingObserver struct {
	mu   sync.Mutex
	seen []string
}

func (r *recordingObserver) CacheResult(kind string, s cacheaside.Status) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seen = append(r.seen, kind+":"+string(s))
}

func TestCacheCounter(t *testing.T) {
	next := &recordingObserver{}
	c := stats.NewCacheCounter(next)
	if got := c.Counts(); got.HitRatio != nil || got.Hits+got.Misses+got.Bypasses != 0 {
		t.Errorf("before any read: got %+v, want zeros and a null ratio", got)
	}
	for _, r := range []struct {
		kind string
		s    cacheaside.Status
	}{
		{"list", cacheaside.Hit}, {"list", cacheaside.Hit}, {"list", cacheaside.Hit},
		{"list", cacheaside.Miss}, {"list", cacheaside.Bypass},
		{"tech", cacheaside.Miss}, {"tech", cacheaside.Hit}, // not list reads
	} {
		c.CacheResult(r.kind, r.s)
	}
	got := c.Counts()
	if got.Hits != 3 || got.Misses != 1 || got.Bypasses != 1 || got.HitRatio == nil || *got.HitRatio != 0.6 {
		t.Errorf("got %+v (ratio %v), want 3 hits, 1 miss, 1 bypass, ratio 0.6", got, deref(got.HitRatio))
	}
	if len(next.seen) != 7 {
		t.Errorf("passed on: got %d reads, want all 7", len(next.seen))
	}
}

func deref(p *float64) any {
	if p == nil {
		return nil
	}
	return *p
}

func TestSnapshot(t *testing.T) {
	now := time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)
	c := stats.NewCacheCounter(nil)
	c.CacheResult("list", cacheaside.Hit)
	s := stats.New(stats.Config{
		QueueMode: "pubsub",
		Waiting:   func(context.Context) (int64, error) { return 3, nil },
		Total:     func(context.Context) (int64, error) { return 42, nil },
		Workers:   func(context.Context) (stats.Workers, error) { return stats.Workers{PubSub: 1}, nil },
		Cache:     c,
		Now:       func() time.Time { return now },
	}, quiet)
	s.SetLive(func() bool { return true })
	b, err := json.Marshal(s.Stats(context.Background()))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"queue_mode":"pubsub","waiting":3,"total":42,"cache":{"hits":1,"misses":0,"bypasses":0,"hit_ratio":1},"live":true,"workers":{"pubsub":1,"streams":0},"generated_at":"2026-05-06T07:08:09Z"}`
	if string(b) != want {
		t.Errorf("got  %s\nwant %s", b, want)
	}
}

// A dependency that fails or hangs leaves its number null; the snapshot
// still comes, within the timeout.
func TestSnapshotDegrades(t *testing.T) {
	s := stats.New(stats.Config{
		QueueMode: "streams",
		Waiting:   func(context.Context) (int64, error) { return 0, errors.New("redis down") },
		Workers:   func(context.Context) (stats.Workers, error) { return stats.Workers{}, errors.New("redis down") },
		Total: func(ctx context.Context) (int64, error) {
			<-ctx.Done()
			return 0, ctx.Err()
		},
		Timeout: 50 * time.Millisecond,
	}, quiet)
	start := time.Now()
	snap := s.Stats(context.Background())
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("took %v, want about the 50ms timeout", took)
	}
	if snap.Waiting != nil || snap.Total != nil || snap.Workers != nil || snap.Live || snap.QueueMode != "streams" || snap.Cache.HitRatio != nil {
		t.Errorf("got %+v, want null numbers, not live, streams", snap)
	}
}

func TestTotalIsCachedBrieflyAndDroppedOnAStore(t *testing.T) {
	var calls atomic.Int64
	var clock atomic.Int64
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s := stats.New(stats.Config{
		Total: func(context.Context) (int64, error) {
			return 100 + calls.Add(1), nil
		},
		TotalTTL: time.Second,
		Now:      func() time.Time { return base.Add(time.Duration(clock.Load())) },
	}, quiet)
	total := func() int64 {
		t.Helper()
		snap := s.Stats(context.Background())
		if snap.Total == nil {
			t.Fatal("total: got null")
		}
		return *snap.Total
	}
	if got := total(); got != 101 {
		t.Errorf("first: got %d, want 101", got)
	}
	clock.Store(int64(500 * time.Millisecond))
	if got := total(); got != 101 {
		t.Errorf("within the TTL: got %d, want the cached 101", got)
	}
	s.TechStored(context.Background(), techlist.Event{})
	if got := total(); got != 102 {
		t.Errorf("after TechStored: got %d, want a fresh 102", got)
	}
	clock.Store(int64(2 * time.Second))
	if got := total(); got != 103 {
		t.Errorf("after the TTL: got %d, want a fresh 103", got)
	}
}

func TestConcurrentSnapshotsShareOneCount(t *testing.T) {
	var calls atomic.Int64
	release := make(chan struct{})
	s := stats.New(stats.Config{
		Total: func(context.Context) (int64, error) {
			calls.Add(1)
			<-release
			return 7, nil
		},
		Timeout: 5 * time.Second,
	}, quiet)
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() { s.Stats(context.Background()) })
	}
	time.Sleep(50 * time.Millisecond)
	close(release)
	wg.Wait()
	if n := calls.Load(); n != 1 {
		t.Errorf("COUNT queries: got %d, want 1", n)
	}
}

func TestWaitingPicksTheBacklog(t *testing.T) {
	pending := func(context.Context) (int64, error) { return 5, nil }
	if n, _ := stats.Waiting(struct{}{}, pending)(context.Background()); n != 5 {
		t.Errorf("a queue without a backlog: got %d, want the pending count 5", n)
	}
	if n, _ := stats.Waiting(backlog(9), pending)(context.Background()); n != 9 {
		t.Errorf("a queue with a backlog: got %d, want 9", n)
	}
}

type backlog int64

func (b backlog) Backlog(context.Context) (int64, error) { return int64(b), nil }

// On the real MySQL: the row counter counts the table.
func TestRowCounter(t *testing.T) {
	cfg, db := testenv.MySQL(t)
	count := stats.RowCounter(db, cfg.Table)
	ctx := context.Background()
	if n, err := count(ctx); err != nil || n != 0 {
		t.Fatalf("empty table: got %d, %v; want 0", n, err)
	}
	now := mysql.Now()
	techs := []techlist.Tech{
		{ID: "01890a5d-ac96-774b-bcce-000000000001", Text: "Go", Priority: techlist.PriorityLow, CreatedAt: now, SubmittedAt: now},
		{ID: "01890a5d-ac96-774b-bcce-000000000002", Text: "Redis", Priority: techlist.PriorityHigh, CreatedAt: now, SubmittedAt: now},
	}
	if _, err := mysql.NewStore(db, cfg.Table).Insert(ctx, techs); err != nil {
		t.Fatal(err)
	}
	if n, err := count(ctx); err != nil || n != 2 {
		t.Errorf("after two inserts: got %d, %v; want 2", n, err)
	}
	if _, err := stats.RowCounter(db, "missing_table")(ctx); err == nil {
		t.Error("missing table: got no error")
	}
}
