package cacheaside

import (
	"sync"
	"time"
)

// Absent remembers, briefly, ids that were neither pending nor stored, so
// that repeated reads of an unknown id do not each cost a MySQL query. It
// lives in the process, not in Redis: it spares MySQL at no network cost,
// and what outside input can make it hold is bounded here, by maxEntries.
//
// An entry is consulted only after the pending mark said "not pending".
// An id the api-server handed out was marked pending before its 202, so an
// entry for it can only come from a read made before it was accepted,
// which needs the id before the api-server made it (UUIDv7: not
// guessable). The TTL and Forget (on each tech.created event) bound even
// that case.
type Absent struct {
	ttl        time.Duration
	maxEntries int
	now        func() time.Time

	mu      sync.Mutex
	expires map[string]time.Time
}

// NewAbsent returns a set keeping up to maxEntries ids for ttl each.
func NewAbsent(ttl time.Duration, maxEntries int) *Absent {
	return &Absent{ttl: ttl, maxEntries: maxEntries, now: time.Now, expires: map[string]time.Time{}}
}

// Has reports whether id was recorded absent less than the TTL ago.
func (a *Absent) Has(id string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	exp, ok := a.expires[id]
	if ok && !a.now().Before(exp) {
		delete(a.expires, id)
		return false
	}
	return ok
}

// Add records id as absent for the TTL. When the set is full, expired
// entries go first, then an arbitrary one (map order is random), so a
// flood of distinct ids costs memory up to the bound and no more.
func (a *Absent) Add(id string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.now()
	if _, ok := a.expires[id]; !ok && len(a.expires) >= a.maxEntries {
		for k, exp := range a.expires {
			if !now.Before(exp) {
				delete(a.expires, k)
			}
		}
		for k := range a.expires {
			if len(a.expires) < a.maxEntries {
				break
			}
			delete(a.expires, k)
		}
	}
	a.expires[id] = now.Add(a.ttl)
}

// Forget drops id, as when the worker announces it stored.
func (a *Absent) Forget(id string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.expires, id)
}

// Len returns how many ids are held, expired or not.
func (a *Absent) Len() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.expires)
}
