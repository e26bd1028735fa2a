package cacheaside

import (
	"context"
	"errors"
	"math"
	"sync"
)

// missFlight shares one MySQL query between the concurrent misses of a
// page, like singleflight, with two differences. The readers waiting on
// the query are answered as soon as it returns, while the reader that ran
// it fills the cache and only then answers, with the key still held: the
// waiters do not wait for the fill's round trip, one arriving during the
// fill gets the page already read, and the reader that missed finds the
// page cached on its next read (MISS, then HIT). And a reader whose look
// at Redis began before a fill landed, and who finds no query in flight,
// is told to look again instead of querying: the page it missed may be
// there now.
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
// new one it runs, then fills the cache with fill (on success). again says
// to look at Redis again instead: a flight ended since fills was taken.
// The query and the fill do not see the reader give up (ctx), as others
// share them, and are bounded by refreshTimeout.
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
	c := &missCall{ready: make(chan struct{}), err: errQueryPanicked}
	f.calls[key] = c
	f.mu.Unlock()
	defer func() {
		select {
		case <-c.ready:
		default: // the query panicked: free the waiters
			close(c.ready)
		}
		f.mu.Lock()
		delete(f.calls, key)
		f.done++
		f.mu.Unlock()
	}()

	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), refreshTimeout)
	defer cancel()
	c.val, c.err = query(ctx)
	close(c.ready)
	if c.err == nil {
		fill(ctx, c.val)
	}
	return c.val, false, c.err
}

var errQueryPanicked = errors.New("the shared list query panicked")
