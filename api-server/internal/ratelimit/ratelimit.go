// Package ratelimit limits how often each client may act: a token bucket
// per key (the api-server keys by client IP), for a bounded number of keys.
package ratelimit

import (
	"container/list"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Limiter allows each key perSecond actions a second on average, and
// burst at once. It tracks at most maxKeys keys: past that, the key seen
// longest ago is forgotten (it starts again with a full bucket), so the
// memory it holds is bounded whatever keys clients send. It is safe for
// concurrent use.
type Limiter struct {
	limit   rate.Limit
	burst   int
	maxKeys int
	now     func() time.Time

	mu    sync.Mutex
	keys  map[string]*list.Element // of *bucket
	order *list.List               // front: the key seen last
}

type bucket struct {
	key string
	lim *rate.Limiter
}

// New returns a Limiter; perSecond, burst and maxKeys must be positive.
func New(perSecond float64, burst, maxKeys int) *Limiter {
	return &Limiter{
		limit: rate.Limit(perSecond), burst: burst, maxKeys: maxKeys, now: time.Now,
		keys: map[string]*list.Element{}, order: list.New(),
	}
}

// Allow reports whether key may act now, and takes its token if so. When
// not, retryAfter is how long until it may.
func (l *Limiter) Allow(key string) (ok bool, retryAfter time.Duration) {
	now := l.now()
	lim := l.bucket(key)
	if lim.AllowN(now, 1) {
		return true, 0
	}
	missing := 1 - lim.TokensAt(now)
	return false, time.Duration(missing / float64(l.limit) * float64(time.Second))
}

// bucket returns key's bucket, making one (and forgetting the key seen
// longest ago when full) for a new key.
func (l *Limiter) bucket(key string) *rate.Limiter {
	l.mu.Lock()
	defer l.mu.Unlock()
	if e, ok := l.keys[key]; ok {
		l.order.MoveToFront(e)
		return e.Value.(*bucket).lim
	}
	if l.order.Len() >= l.maxKeys {
		oldest := l.order.Back()
		l.order.Remove(oldest)
		delete(l.keys, oldest.Value.(*bucket).key)
	}
	b := &bucket{key: key, lim: rate.NewLimiter(l.limit, l.burst)}
	l.keys[key] = l.order.PushFront(b)
	return b.lim
}

// Len returns how many keys are tracked.
func (l *Limiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.keys)
}
