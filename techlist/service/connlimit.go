package service

import (
	"net"
	"net/http"
	"sync"
	"time"
)

// limitConns returns ln serving at most n connections at once. When all n
// are taken and another arrives, it asks srv to close its idle keep-alive
// connections (as nginx does near worker_connections), every 100 ms until
// one closes: without that, clients that keep idle
// connections open (browsers, proxies, a load generator's pool) would hold
// every slot for IdleTimeout while new clients waited in the accept queue.
func limitConns(ln net.Listener, n int, srv *http.Server) net.Listener {
	return &connLimit{Listener: ln, slots: make(chan struct{}, n), srv: srv}
}

type connLimit struct {
	net.Listener
	slots chan struct{}
	srv   *http.Server

	mu        sync.Mutex
	lastPurge time.Time
}

func (l *connLimit) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	// Taken from the kernel's queue, the connection holds a socket but no
	// goroutine or buffers until it gets a slot; the next one waits in the
	// queue meanwhile.
	for {
		select {
		case l.slots <- struct{}{}:
			return &limitedConn{Conn: c, release: func() { <-l.slots }}, nil
		default:
		}
		l.closeIdle()
		select {
		case l.slots <- struct{}{}:
			return &limitedConn{Conn: c, release: func() { <-l.slots }}, nil
		case <-time.After(100 * time.Millisecond): // idle again by now, perhaps
		}
	}
}

// closeIdle closes srv's idle connections, at most every 100 ms: turning
// keep-alives off closes them, and turning them on again at once keeps
// the busy connections' keep-alive.
func (l *connLimit) closeIdle() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if time.Since(l.lastPurge) < 100*time.Millisecond {
		return
	}
	l.lastPurge = time.Now()
	l.srv.SetKeepAlivesEnabled(false)
	l.srv.SetKeepAlivesEnabled(true)
}

// limitedConn frees its slot once, on its first Close.
type limitedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
