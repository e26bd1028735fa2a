package ratelimit

import (
	"strconv"
	"sync/atomic"
	"testing"
	"time"
)

// fakeClock is a clock the test moves.
type fakeClock struct{ ns atomic.Int64 }

func (c *fakeClock) now() time.Time      { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) add(d time.Duration) { c.ns.Add(int64(d)) }
func newLimiter(perSecond float64, burst, maxKeys int) (*Limiter, *fakeClock) {
	c := &fakeClock{}
	c.ns.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	l := New(perSecond, burst, maxKeys)
	l.now = c.now
	return l, c
}

func TestAllowBurstThenRate(t *testing.T) {
	l, clock := newLimiter(2, 4, 10)
	for i := range 4 {
		if ok, _ := l.Allow("a"); !ok {
			t.Fatalf("action %d of the burst of 4: refused", i+1)
		}
	}
	ok, wait := l.Allow("a")
	if ok {
		t.Fatal("action 5 at once: allowed, want refused")
	}
	if wait != 500*time.Millisecond {
		t.Errorf("retry after: got %v, want 500ms (one token at 2/s)", wait)
	}
	if ok, _ := l.Allow("b"); !ok {
		t.Error("another key: refused, want its own bucket")
	}
	clock.add(500 * time.Millisecond)
	if ok, _ := l.Allow("a"); !ok {
		t.Error("after 500ms at 2/s: refused, want one more")
	}
	if ok, _ := l.Allow("a"); ok {
		t.Error("right after: allowed, want refused")
	}
}

func TestKeysAreBounded(t *testing.T) {
	l, _ := newLimiter(1, 1, 100)
	for i := range 10_000 {
		l.Allow("10.0." + strconv.Itoa(i/256) + "." + strconv.Itoa(i%256))
	}
	if n := l.Len(); n != 100 {
		t.Errorf("keys tracked after 10000 distinct ones: got %d, want the bound, 100", n)
	}
}

// The key seen longest ago is the one forgotten: a client that keeps
// sending keeps its (empty) bucket while others come and go.
func TestForgetsTheKeySeenLongestAgo(t *testing.T) {
	l, _ := newLimiter(1, 1, 2)
	l.Allow("busy") // takes its only token
	l.Allow("x")
	l.Allow("busy") // refused, and seen last
	l.Allow("y")    // forgets x, not busy
	if ok, _ := l.Allow("busy"); ok {
		t.Error("busy: allowed, want still refused (its bucket kept)")
	}
	if ok, _ := l.Allow("x"); !ok {
		t.Error("x, forgotten: refused, want a new full bucket")
	}
}
