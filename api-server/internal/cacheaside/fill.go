package cacheaside

import (
	"context"
	"math"
	"sync"
)

// missFlight shares one MySQL query between the concurrent misses of a
// page, like singleflight, with two differences. The readers are answered
// as soon as the query returns, and the cache fill runs after, in the same
// goroutine, while the key is still held: no reader waits for the fill's
// round trip, and one arriving during the fill is answered with the page
// already read. And a reader whose look at Redis began before a fill
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
// new one it starts, whose result fill is then given (on success). again
// says to look at Redis again instead: a flight ended since fills was
// taken. The query and the fill outlive a reader that gives up (ctx),
// within refreshTimeout, since no reader may be left to wait for them.
func (f *missFlight) do(ctx context.Context, key string, fills uint64, query func(context.Context) ([]byte, error), fill func(context.Context, []byte)) (val []byte, again bool, err error) {
	f.mu.Lock()
	c, ok := f.calls[key]
	if !ok {
		if fills != lookedAgain && fills != f.done {
			f.mu.Unlock()
			return nil, true, nil
		}
		if f.calls == nil {
			f.calls = map[string]*missCall{}
		}
		c = &missCall{ready: make(chan struct{})}
		f.calls[key] = c
		go f.run(context.WithoutCancel(ctx), key, c, query, fill)
	}
	f.mu.Unlock()
	<-c.ready
	return c.val, false, c.err
}

func (f *missFlight) run(ctx context.Context, key string, c *missCall, query func(context.Context) ([]byte, error), fill func(context.Context, []byte)) {
	ctx, cancel := context.WithTimeout(ctx, refreshTimeout)
	defer cancel()
	defer func() {
		f.mu.Lock()
		delete(f.calls, key)
		f.done++
		f.mu.Unlock()
	}()
	c.val, c.err = query(ctx)
	close(c.ready)
	if c.err == nil {
		fill(ctx, c.val)
	}
}
