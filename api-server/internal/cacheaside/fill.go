package cacheaside

import (
	"context"
	"errors"
	"math"
	"sync"
)

// missFlight shares one MySQL query between the concurrent misses of a
// page, like singleflight, with two differences. The readers are answered
// as soon as the query returns, and the cache fill runs after, while the
// key is still held: no reader waits for the fill's round trip, and one
// arriving during the fill is answered with the page already read. And a reader whose look at Redis began before a fill
// landed, and who finds no query in flight, is told to look again instead
// of querying: the page it missed may be there now.
type missFlight struct {
	mu    sync.Mutex
	calls map[string]*missCall
	done  uint64 // flights ended, fill and all
}

type missCall struct {
	ready chan struct{} // closed once val and err are set
	val   []byte
	err   error
}

// lookedAgain, given to do as fills, makes it query whatever has ended.
const lookedAgain = math.MaxUint64

// fills returns how many flights have ended; take it before looking at
// Redis, and hand it to do.
func (f *missFlight) fills() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.done
}

// do returns the page of key from the query in flight for key, or from a
// new one it runs, whose result fill is then given (on success). again
// says to look at Redis again instead: a flight ended since fills was
// taken. The reader that starts the query runs it itself (no hand-over to
// another goroutine on the way of a miss), and the fill in a goroutine of
// its own. Neither sees a reader give up (ctx): others share them. Both
// are bounded by refreshTimeout.
func (f *missFlight) do(ctx context.Context, key string, fills uint64, query func(context.Context) ([]byte, error), fill func(context.Context, []byte)) (val []byte, again bool, err error) {
	f.mu.Lock()
	if c, ok := f.calls[key]; ok {
		f.mu.Unlock()
		<-c.ready
		return c.val, false, c.err
	}
	if fills != lookedAgain && fills != f.done {
		f.mu.Unlock()
		return nil, true, nil
	}
	if f.calls == nil {
		f.calls = map[string]*missCall{}
	}
	c := &missCall{ready: make(chan struct{})}
	f.calls[key] = c
	f.mu.Unlock()

	shared := context.WithoutCancel(ctx)
	done := false
	defer func() {
		if !done { // query panicked: free the waiters and the key
			c.err = errQueryPanicked
			close(c.ready)
			go f.finish(shared, key, c, fill)
		}
	}()
	qctx, cancel := context.WithTimeout(shared, refreshTimeout)
	c.val, c.err = query(qctx)
	cancel()
	done = true
	close(c.ready)
	go f.finish(shared, key, c, fill)
	return c.val, false, c.err
}

var errQueryPanicked = errors.New("the shared list query panicked")

// finish fills the cache with what the query read, then lets the key go.
func (f *missFlight) finish(ctx context.Context, key string, c *missCall, fill func(context.Context, []byte)) {
	ctx, cancel := context.WithTimeout(ctx, refreshTimeout)
	defer cancel()
	if c.err == nil {
		fill(ctx, c.val)
	}
	f.mu.Lock()
	delete(f.calls, key)
	f.done++
	f.mu.Unlock()
}
