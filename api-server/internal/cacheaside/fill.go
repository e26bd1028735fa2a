package cacheaside

import (
	"context"
	"errors"
	"math"
	"sync"
)

// missFlight shares one MySQL query between the concurrent misses of a
// page, like singleflight, with two differences. The reader that ran the
// query answers as soon as it returns, as do the readers that waited on
// it, and the fill of the cache goes on in the background, with the key
// still held: a reader arriving during the fill is answered the page
// already read, from memory (a HIT: it cost no query), so the reader that
// missed gets a HIT on its next read whether or not the fill has landed.
// And a reader whose look at Redis began before a fill of its page (the
// same page and generation) landed, and who finds no query in flight, is
// told to look again instead of querying: the page may be there now.
type missFlight struct {
	mu    sync.Mutex
	calls map[string]*missCall
	done  uint64 // flights ended, fill and all
	// ended holds the keys of the last flights ended: the one that made
	// done k is at k % len. A fill of another page or generation is no
	// reason to look again (sequential misses would each look twice).
	ended [64]string
	// filling counts the fills under way, for tests to wait on.
	filling sync.WaitGroup
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
// new one it runs, and then fills the cache with fill (on success) in the
// background. status is Miss when the reader waited for MySQL, Hit when
// the query had returned before it came. again says to look at Redis
// again instead: a flight ended since fills was taken. The query and the
// fill do not see the reader give up (ctx), as others share them, and are
// bounded by refreshTimeout.
func (f *missFlight) do(ctx context.Context, key string, fills uint64, query func(context.Context) ([]byte, error), fill func(context.Context, []byte)) (val []byte, status Status, again bool, err error) {
	f.mu.Lock()
	if c, ok := f.calls[key]; ok {
		f.mu.Unlock()
		select {
		case <-c.ready: // filling: the page read is in memory
			return c.val, Hit, false, c.err
		default:
		}
		<-c.ready
		return c.val, Miss, false, c.err
	}
	if fills != lookedAgain && f.endedSince(key, fills) {
		f.mu.Unlock()
		return nil, "", true, nil
	}
	if f.calls == nil {
		f.calls = map[string]*missCall{}
	}
	c := &missCall{ready: make(chan struct{}), err: errQueryPanicked}
	f.calls[key] = c
	f.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), refreshTimeout)
	filling := false
	defer func() {
		if !filling { // no fill: the query failed or panicked
			select {
			case <-c.ready:
			default: // it panicked: free the waiters
				close(c.ready)
			}
			f.end(key, cancel)
		}
	}()
	c.val, c.err = query(ctx)
	close(c.ready)
	if c.err != nil {
		return nil, Miss, false, c.err
	}
	filling = true
	f.filling.Add(1)
	go func() {
		defer f.filling.Done()
		defer f.end(key, cancel)
		fill(ctx, c.val)
	}()
	return c.val, Miss, false, nil
}

// end ends the flight of key, fill and all.
func (f *missFlight) end(key string, cancel context.CancelFunc) {
	cancel()
	f.mu.Lock()
	delete(f.calls, key)
	f.ended[f.done%uint64(len(f.ended))] = key
	f.done++
	f.mu.Unlock()
}

// endedSince reports whether a flight of key ended since fills was taken;
// past what ended remembers, it says yes. Call it with f.mu held.
func (f *missFlight) endedSince(key string, fills uint64) bool {
	if f.done-fills > uint64(len(f.ended)) {
		return true
	}
	for n := fills; n < f.done; n++ {
		if f.ended[n%uint64(len(f.ended))] == key {
			return true
		}
	}
	return false
}

var errQueryPanicked = errors.New("the shared list query panicked")
