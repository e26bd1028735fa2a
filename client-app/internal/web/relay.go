package web

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/techlist/client-app/internal/apiclient"
	"github.com/techlist/techlist"
)

// upstream is what the relay needs of the api-server.
type upstream interface {
	Events(ctx context.Context) (*apiclient.EventStream, error)
	Stats(ctx context.Context) (apiclient.Stats, error)
}

const (
	// listenerBuffer is how many events a page's stream may fall behind
	// before it is dropped (the browser reconnects).
	listenerBuffer = 64
	// reopenWait is how soon after a failed open of the api-server's
	// stream another is tried; pages joining meanwhile get that failure.
	reopenWait = time.Second
)

// relay holds the process's one connection to the api-server's event
// stream, and the numbers of the status strip, shared by every open page.
// The connection opens when the first page joins and closes when the last
// leaves; the numbers are read once per interval (and soon after a stored
// tech) while it is open, however many pages listen.
type relay struct {
	api      upstream
	logger   *slog.Logger
	interval time.Duration
	now      func() time.Time

	openMu   sync.Mutex // one open at a time; guards failedAt, failErr
	failedAt time.Time
	failErr  error

	statsMu sync.Mutex // one read of the numbers at a time

	mu        sync.Mutex
	conn      *relayConn
	listeners map[*listener]struct{}
	stats     statsView
	statsAt   time.Time
}

// relayConn is one open upstream stream.
type relayConn struct {
	stream *apiclient.EventStream
	cancel context.CancelFunc
	stored chan struct{} // a tech was stored: read the numbers soon
}

// listener is one page stream's share of the relay.
type listener struct {
	events chan techlist.Event
	stats  chan statsView // holds the latest only
	ended  chan struct{}  // closed when the upstream ends or the page fell behind
}

func newRelay(api upstream, logger *slog.Logger, cfg Config) *relay {
	return &relay{
		api: api, logger: logger, interval: cfg.StatsInterval, now: cfg.Now,
		listeners: map[*listener]struct{}{},
	}
}

// join adds a page's stream, opening the upstream connection if none is
// open; life is the server's, whose end ends that connection. Once it
// returns, every event the api-server relays reaches the listener. leave
// must be called when the page's stream ends.
func (r *relay) join(ctx, life context.Context) (l *listener, leave func(), err error) {
	r.openMu.Lock()
	defer r.openMu.Unlock()
	l = &listener{events: make(chan techlist.Event, listenerBuffer), stats: make(chan statsView, 1), ended: make(chan struct{})}
	r.mu.Lock()
	open := r.conn != nil
	if open {
		r.addLocked(l)
	}
	r.mu.Unlock()
	if !open {
		if err := r.open(ctx, life, l); err != nil {
			return nil, nil, err
		}
	}
	return l, func() { r.leave(l) }, nil
}

// open connects to the api-server's stream, with l as its first listener.
// A failure is remembered for reopenWait, so pages reconnecting while the
// api-server is down do not each try.
func (r *relay) open(ctx, life context.Context, l *listener) error {
	if !r.failedAt.IsZero() && r.now().Sub(r.failedAt) < reopenWait {
		return r.failErr
	}
	cctx, cancel := context.WithCancel(life)
	stream, err := r.api.Events(cctx)
	if err != nil {
		cancel()
		if ctx.Err() == nil && life.Err() == nil {
			r.failedAt, r.failErr = r.now(), err
			r.logger.Warn("events: cannot open the api-server's stream", "err", err)
		}
		return err
	}
	r.failedAt, r.failErr = time.Time{}, nil
	c := &relayConn{stream: stream, cancel: cancel, stored: make(chan struct{}, 1)}
	r.mu.Lock()
	r.conn = c
	r.addLocked(l)
	r.mu.Unlock()
	go r.pump(cctx, c)
	go r.poll(cctx, c)
	return nil
}

// addLocked adds l, handing it the latest numbers at once.
func (r *relay) addLocked(l *listener) {
	r.listeners[l] = struct{}{}
	if !r.statsAt.IsZero() {
		l.stats <- r.stats
	}
}

// leave removes l; the last to leave closes the upstream connection.
func (r *relay) leave(l *listener) {
	r.mu.Lock()
	delete(r.listeners, l)
	var c *relayConn
	if len(r.listeners) == 0 && r.conn != nil {
		c, r.conn = r.conn, nil
	}
	r.mu.Unlock()
	if c != nil {
		c.close()
	}
}

func (c *relayConn) close() {
	c.cancel()
	c.stream.Close()
}

// pump relays the upstream's events until it ends, then ends every
// listener's stream (their browsers reconnect, and the next join opens a
// new connection).
func (r *relay) pump(ctx context.Context, c *relayConn) {
	defer r.end(c)
	for {
		ev, err := c.stream.Next()
		if err != nil {
			if ctx.Err() == nil {
				r.logger.Warn("events: the api-server's stream ended", "err", err)
			}
			return
		}
		r.broadcast(ev)
		select {
		case c.stored <- struct{}{}:
		default:
		}
	}
}

func (r *relay) end(c *relayConn) {
	r.mu.Lock()
	if r.conn == c {
		r.conn = nil
		for l := range r.listeners {
			delete(r.listeners, l)
			close(l.ended)
		}
	}
	r.mu.Unlock()
	c.close()
}

// broadcast hands ev to every listener without waiting; one whose buffer
// is full is dropped.
func (r *relay) broadcast(ev techlist.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for l := range r.listeners {
		select {
		case l.events <- ev:
		default:
			delete(r.listeners, l)
			close(l.ended)
			r.logger.Warn("events: dropped a page that fell behind")
		}
	}
}

// poll reads the numbers now, every interval, and soon after a stored
// tech (a burst costs one read), for every listener at once.
func (r *relay) poll(ctx context.Context, c *relayConn) {
	tick := time.NewTicker(r.interval)
	defer tick.Stop()
	soon := time.NewTimer(statsSoon)
	soon.Stop()
	defer soon.Stop()
	soonSet := false
	r.publishStats(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			r.publishStats(ctx)
		case <-c.stored:
			if !soonSet {
				soon.Reset(statsSoon)
				soonSet = true
			}
		case <-soon.C:
			soonSet = false
			r.publishStats(ctx)
		}
	}
}

// publishStats reads the numbers and hands them to every listener.
func (r *relay) publishStats(ctx context.Context) {
	v, ok := r.readStats(ctx, 0)
	if !ok {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for l := range r.listeners {
		select { // keep only the latest
		case <-l.stats:
		default:
		}
		l.stats <- v
	}
}

// readStats returns the numbers read less than maxAge ago, or reads them.
// Reads are one at a time, so pages asking together share one. ok is false
// when ctx ended first.
func (r *relay) readStats(ctx context.Context, maxAge time.Duration) (statsView, bool) {
	r.statsMu.Lock()
	defer r.statsMu.Unlock()
	r.mu.Lock()
	v, at := r.stats, r.statsAt
	r.mu.Unlock()
	if !at.IsZero() && r.now().Sub(at) < maxAge {
		return v, true
	}
	st, err := r.api.Stats(ctx)
	if ctx.Err() != nil {
		return statsView{}, false
	}
	v = newStatsView(st, err)
	r.mu.Lock()
	r.stats, r.statsAt = v, r.now()
	r.mu.Unlock()
	return v, true
}
