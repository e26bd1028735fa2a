package cacheaside

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Local is a small in-process tier in front of Redis for list pages: the
// serialized bytes, so a hit costs no network round trip at all.
//
// Staleness is bounded twice over. Every api-server replica watches the
// worker's tech.created events and drops the whole tier on each, so a page
// is normally stale for no longer than the event takes to arrive (about a
// millisecond). If events are lost (the subscription broke), no entry is
// served more than TTL after it was read from Redis or MySQL.
//
// As in Redis, a fill is refused when an invalidation happened after the
// reader looked: the tier's generation must not have moved.
type Local struct {
	ttl        time.Duration
	maxEntries int
	now        func() time.Time

	gen     atomic.Uint64
	hits    atomic.Uint64
	mu      sync.RWMutex
	entries map[string]localEntry
}

type localEntry struct {
	val     []byte
	expires time.Time
}

// NewLocal returns a tier keeping up to maxEntries pages for ttl each.
func NewLocal(ttl time.Duration, maxEntries int) *Local {
	return &Local{ttl: ttl, maxEntries: maxEntries, now: time.Now, entries: map[string]localEntry{}}
}

// Gen returns the tier's generation, to pass to Set after reading below.
func (l *Local) Gen() uint64 { return l.gen.Load() }

// Get returns the page's bytes when held and fresh.
func (l *Local) Get(field string) ([]byte, bool) {
	l.mu.RLock()
	e, ok := l.entries[field]
	l.mu.RUnlock()
	if !ok || l.now().After(e.expires) {
		return nil, false
	}
	l.hits.Add(1)
	return e.val, true
}

// Hits returns how many reads the tier answered.
func (l *Local) Hits() uint64 { return l.hits.Load() }

// Set keeps val for field unless the tier was invalidated since gen.
func (l *Local) Set(field string, val []byte, gen uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.gen.Load() != gen {
		return
	}
	if len(l.entries) >= l.maxEntries {
		// Cursor pages are many and cold; dropping all is simplest and
		// costs one Redis read per page afterwards.
		clear(l.entries)
	}
	l.entries[field] = localEntry{val: val, expires: l.now().Add(l.ttl)}
}

// Invalidate drops every page and moves the generation on.
func (l *Local) Invalidate() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.gen.Add(1)
	clear(l.entries)
}

// HitsCounter is a Prometheus counter of the reads l answered.
func HitsCounter(l *Local) prometheus.Collector {
	return prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "api_cache_local_hits_total", Help: "List reads answered by the in-process tier (also counted as HIT).",
	}, func() float64 { return float64(l.Hits()) })
}
