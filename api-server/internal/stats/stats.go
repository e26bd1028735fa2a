// Package stats gathers what GET /api/v1/stats shows: the queue mode, how
// many techs wait for the worker, how many are stored, and how the list
// reads of this api-server were served.
package stats

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/techlist/techlist"

	"github.com/techlist/api-server/internal/cacheaside"
)

// CacheCounter counts the list reads of this process by where they were
// served from, and passes every read on to next (the Prometheus metrics).
type CacheCounter struct {
	next                   cacheaside.Observer
	hits, misses, bypasses atomic.Int64
}

// NewCacheCounter returns a counter that also reports to next (may be nil).
func NewCacheCounter(next cacheaside.Observer) *CacheCounter {
	return &CacheCounter{next: next}
}

// CacheResult counts one cache-aside read; only list reads are counted
// here, since single techs asked for while pending are misses by nature.
func (c *CacheCounter) CacheResult(kind string, s cacheaside.Status) {
	if c.next != nil {
		c.next.CacheResult(kind, s)
	}
	if kind != "list" {
		return
	}
	switch s {
	case cacheaside.Hit:
		c.hits.Add(1)
	case cacheaside.Miss:
		c.misses.Add(1)
	case cacheaside.Bypass:
		c.bypasses.Add(1)
	}
}

// Cache is the "cache" member of the stats: list reads since this
// api-server started. HitRatio is hits over all reads, null before any.
type Cache struct {
	Hits     int64    `json:"hits"`
	Misses   int64    `json:"misses"`
	Bypasses int64    `json:"bypasses"`
	HitRatio *float64 `json:"hit_ratio"`
}

// Counts returns the counts so far.
func (c *CacheCounter) Counts() Cache {
	out := Cache{Hits: c.hits.Load(), Misses: c.misses.Load(), Bypasses: c.bypasses.Load()}
	if n := out.Hits + out.Misses + out.Bypasses; n > 0 {
		r := float64(out.Hits) / float64(n)
		out.HitRatio = &r
	}
	return out
}

// Snapshot is the body of GET /api/v1/stats. Waiting and Total are null
// when Redis or MySQL did not answer in time.
type Snapshot struct {
	QueueMode string `json:"queue_mode"`
	// Waiting is how many accepted techs the worker has not stored: the
	// stream's length in streams mode, the pending marks in pubsub mode.
	Waiting *int64 `json:"waiting"`
	// Total is how many techs are stored (COUNT(*), cached briefly).
	Total *int64 `json:"total"`
	Cache Cache  `json:"cache"`
	// Live reports whether this api-server is subscribed to the worker's
	// events, so that GET /api/v1/events relays them.
	Live bool `json:"live"`
	// Workers counts the live workers on the channel by queue mode; null
	// when Redis did not answer. An api-server in streams mode with only
	// pub/sub workers has nobody to store what it accepts.
	Workers     *Workers  `json:"workers"`
	GeneratedAt time.Time `json:"generated_at"`
}

// Workers is how many workers of each queue mode hold a live lease.
type Workers struct {
	PubSub  int64 `json:"pubsub"`
	Streams int64 `json:"streams"`
}

// Config says where each number comes from.
type Config struct {
	QueueMode string
	// Waiting counts the techs waiting for the worker.
	Waiting func(ctx context.Context) (int64, error)
	// Workers counts the live workers by mode; may be nil.
	Workers func(ctx context.Context) (Workers, error)
	// Total counts the stored techs; see RowCounter.
	Total func(ctx context.Context) (int64, error)
	Cache *CacheCounter
	// Live reports whether the events subscription is open; may be nil.
	Live func() bool
	// TotalTTL is how long a count is reused; default 2s.
	TotalTTL time.Duration
	// Timeout bounds each dependency's answer; default 1s.
	Timeout time.Duration
	Now     func() time.Time
}

// Source makes snapshots. It is safe for concurrent use.
type Source struct {
	cfg    Config
	logger *slog.Logger

	flight  singleflight.Group
	mu      sync.Mutex
	total   int64
	totalAt time.Time
	fresh   bool
	gen     uint64 // bumped by TechStored, so a count begun before is not kept
}

// New returns a Source over cfg.
func New(cfg Config, logger *slog.Logger) *Source {
	if cfg.TotalTTL <= 0 {
		cfg.TotalTTL = 2 * time.Second
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Cache == nil {
		cfg.Cache = NewCacheCounter(nil)
	}
	return &Source{cfg: cfg, logger: logger}
}

// Stats returns a snapshot. A dependency that fails leaves its number null
// and is logged; the snapshot itself never fails.
func (s *Source) Stats(ctx context.Context) Snapshot {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	snap := Snapshot{QueueMode: s.cfg.QueueMode, Cache: s.cfg.Cache.Counts(), GeneratedAt: s.cfg.Now().UTC()}
	s.mu.Lock()
	liveFn := s.cfg.Live
	s.mu.Unlock()
	if liveFn != nil {
		snap.Live = liveFn()
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		if s.cfg.Waiting == nil {
			return
		}
		n, err := s.cfg.Waiting(ctx)
		if err != nil {
			s.logger.WarnContext(ctx, "stats: count waiting techs", "err", err)
			return
		}
		snap.Waiting = &n
	})
	wg.Go(func() {
		if s.cfg.Workers == nil {
			return
		}
		w, err := s.cfg.Workers(ctx)
		if err != nil {
			s.logger.WarnContext(ctx, "stats: count live workers", "err", err)
			return
		}
		snap.Workers = &w
	})
	wg.Go(func() {
		n, err := s.totalCount(ctx)
		if err != nil {
			s.logger.WarnContext(ctx, "stats: count stored techs", "err", err)
			return
		}
		snap.Total = &n
	})
	wg.Wait()
	return snap
}

// totalCount returns the stored count, reusing one younger than TotalTTL;
// concurrent callers share one query.
func (s *Source) totalCount(ctx context.Context) (int64, error) {
	if s.cfg.Total == nil {
		return 0, fmt.Errorf("no row counter")
	}
	s.mu.Lock()
	if s.fresh && s.cfg.Now().Sub(s.totalAt) < s.cfg.TotalTTL {
		n := s.total
		s.mu.Unlock()
		return n, nil
	}
	s.mu.Unlock()
	ch := s.flight.DoChan("total", func() (any, error) {
		// Not the caller's context: another caller may share the result.
		qctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.Timeout)
		defer cancel()
		s.mu.Lock()
		gen := s.gen
		s.mu.Unlock()
		start := s.cfg.Now()
		n, err := s.cfg.Total(qctx)
		if err != nil {
			return int64(0), err
		}
		s.mu.Lock()
		if s.gen == gen {
			s.total, s.totalAt, s.fresh = n, start, true
		}
		s.mu.Unlock()
		return n, nil
	})
	select {
	case <-ctx.Done():
		return 0, ctx.Err()
	case res := <-ch:
		if res.Err != nil {
			return 0, res.Err
		}
		return res.Val.(int64), nil
	}
}

// SetLive sets how the snapshot learns whether events are relayed.
func (s *Source) SetLive(live func() bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cfg.Live = live
}

// TechStored forgets the cached count, so the next snapshot counts again:
// the worker has just stored ev's tech. The live hub calls it on each
// tech.created event.
func (s *Source) TechStored(context.Context, techlist.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fresh = false
	s.gen++
}

// EventsMissed does nothing: a count that missed a stored tech is
// corrected within TotalTTL.
func (s *Source) EventsMissed() {}

// Querier runs one query; *sqlx.DB and *sql.DB are ones.
type Querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// RowCounter returns a func counting the rows of table, a name already
// validated as an identifier by the MySQL configuration.
func RowCounter(db Querier, table string) func(ctx context.Context) (int64, error) {
	query := "SELECT COUNT(*) FROM `" + table + "`"
	return func(ctx context.Context) (int64, error) {
		var n int64
		if err := db.QueryRowContext(ctx, query).Scan(&n); err != nil {
			return 0, fmt.Errorf("count techs: %w", err)
		}
		return n, nil
	}
}

// Backlogger is a queue that knows how many entries wait in it, as
// *redis.StreamPublisher does.
type Backlogger interface {
	Backlog(ctx context.Context) (int64, error)
}

// Waiting returns how to count the techs waiting for the worker: the
// queue's backlog when it keeps one (streams), else pending (the pending
// marks, for pub/sub).
func Waiting(queue any, pending func(ctx context.Context) (int64, error)) func(ctx context.Context) (int64, error) {
	if b, ok := queue.(Backlogger); ok {
		return b.Backlog
	}
	return pending
}
