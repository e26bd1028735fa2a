// Package live relays the worker's tech.created events to the api-server's
// Server-Sent Events clients: one Redis subscription for the whole process,
// fanned out in memory to every connected client.
package live

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	goredis "github.com/redis/go-redis/v9"
	"github.com/techlist/techlist"
	"github.com/techlist/techlist/redis"
	"github.com/techlist/techlist/retry"
)

// Source is a subscription to the events channel; *redis.EventSubscription
// is one.
type Source interface {
	// Receive blocks until the next event, and returns a
	// *techlist.BadEventError for a message that is not a valid event.
	Receive(ctx context.Context) (techlist.Event, error)
	Close() error
}

// SubscribeFunc opens a Source. It returns once the subscription is
// confirmed, so that no event published afterwards is missed.
type SubscribeFunc func(ctx context.Context) (Source, error)

// Message is one event ready to send to a client: the tech's id and the
// event's JSON, {"type":"tech.created","tech":Tech}, on one line.
type Message struct {
	ID   string
	Data []byte
}

// Options tune a Hub; the zero value is usable.
type Options struct {
	// Buffer is how many messages a client may fall behind before it is
	// dropped (its channel closed, so it reconnects). Default 64.
	Buffer int
	// Watchers are told of each event before it is relayed, and of each
	// moment events may have been missed.
	Watchers []Watcher
	// MinBackoff and MaxBackoff bound the wait before subscribing again
	// after a failure. Defaults 200ms and 5s.
	MinBackoff, MaxBackoff time.Duration
}

// Watcher is told what the hub receives, before any client is. The
// api-server's caches are watchers: each stored tech makes some of what
// they hold stale.
type Watcher interface {
	// TechStored is called with each event.
	TechStored(ctx context.Context, ev techlist.Event)
	// EventsMissed is called whenever events may have been missed: on each
	// (re)subscription and when a subscription is lost.
	EventsMissed()
}

// Hub holds the one subscription and the connected clients.
type Hub struct {
	subscribe SubscribeFunc
	logger    *slog.Logger
	opts      Options

	mu        sync.Mutex
	clients   map[chan Message]struct{}
	stopped   bool
	connected bool
}

// NewHub returns a hub that subscribes with subscribe once Run is called.
func NewHub(subscribe SubscribeFunc, logger *slog.Logger, opts Options) *Hub {
	if opts.Buffer <= 0 {
		opts.Buffer = 64
	}
	if opts.MinBackoff <= 0 {
		opts.MinBackoff = 200 * time.Millisecond
	}
	if opts.MaxBackoff < opts.MinBackoff {
		opts.MaxBackoff = max(5*time.Second, opts.MinBackoff)
	}
	return &Hub{subscribe: subscribe, logger: logger, opts: opts, clients: map[chan Message]struct{}{}}
}

// Redis returns the SubscribeFunc of the events channel on Redis.
func Redis(rdb goredis.UniversalClient, channel string) SubscribeFunc {
	return func(ctx context.Context) (Source, error) {
		return redis.SubscribeEvents(ctx, rdb, channel)
	}
}

// Run keeps the subscription open, resubscribing with backoff after a
// failure, and relays every event to the clients, until ctx ends. Then it
// closes every client's channel, and clients that join later get a closed
// channel at once.
func (h *Hub) Run(ctx context.Context) {
	defer h.stop()
	backoff := retry.Backoff{Min: h.opts.MinBackoff, Max: h.opts.MaxBackoff}
	for ctx.Err() == nil {
		src, err := h.subscribe(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			wait := backoff.Next()
			h.logger.Warn("live events: cannot subscribe; retrying", "err", err, "in", wait)
			retry.Sleep(ctx, wait)
			continue
		}
		backoff.Reset() // it worked: a new failure starts over
		h.setConnected(true)
		h.gap()
		err = h.relay(ctx, src)
		h.setConnected(false)
		h.gap()
		src.Close()
		if ctx.Err() != nil {
			return
		}
		wait := backoff.Next()
		h.logger.Warn("live events: subscription lost; subscribing again", "err", err, "in", wait)
		// Events published meanwhile are lost (pub/sub keeps nothing);
		// pages that refresh show them.
		retry.Sleep(ctx, wait)
	}
}

func (h *Hub) gap() {
	for _, w := range h.opts.Watchers {
		w.EventsMissed()
	}
}

// relay receives from src until it fails or ctx ends.
func (h *Hub) relay(ctx context.Context, src Source) error {
	h.logger.Debug("live events: subscribed")
	for {
		ev, err := src.Receive(ctx)
		if err != nil {
			if bad, ok := errors.AsType[*techlist.BadEventError](err); ok {
				h.logger.Warn("live events: skipped a malformed event", "err", bad.Err, "bytes", len(bad.Payload))
				continue
			}
			return err
		}
		for _, w := range h.opts.Watchers {
			w.TechStored(ctx, ev)
		}
		data, err := json.Marshal(ev)
		if err != nil {
			h.logger.Error("live events: encode event", "err", err)
			continue
		}
		h.broadcast(Message{ID: ev.Tech.ID, Data: data})
	}
}

// broadcast sends m to every client without waiting; a client whose
// buffer is full is dropped, and reconnects.
func (h *Hub) broadcast(m Message) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for ch := range h.clients {
		select {
		case ch <- m:
		default:
			delete(h.clients, ch)
			close(ch)
			h.logger.Warn("live events: dropped a client that fell behind")
		}
	}
}

// Join adds a client. It returns the client's messages, and leave, which
// removes it (call it once the client is gone). The channel is closed when
// the hub stops or the client falls too far behind.
func (h *Hub) Join() (<-chan Message, func()) {
	ch := make(chan Message, h.opts.Buffer)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.stopped {
		close(ch)
		return ch, func() {}
	}
	h.clients[ch] = struct{}{}
	return ch, func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		if _, ok := h.clients[ch]; ok {
			delete(h.clients, ch)
			close(ch)
		}
	}
}

// Connected reports whether the subscription is open now.
func (h *Hub) Connected() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.connected
}

// Clients returns how many clients are connected.
func (h *Hub) Clients() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.clients)
}

func (h *Hub) setConnected(ok bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.connected = ok
}

func (h *Hub) stop() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.stopped, h.connected = true, false
	for ch := range h.clients {
		delete(h.clients, ch)
		close(ch)
	}
}

// ClientsGauge is a Prometheus gauge of the hub's connected clients.
func ClientsGauge(h *Hub) prometheus.Collector {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "api_event_stream_clients", Help: "Clients connected to GET /api/v1/events.",
	}, func() float64 { return float64(h.Clients()) })
}

// Start runs h in a goroutine until ctx ends, and returns a func that waits
// until it has stopped.
func Start(ctx context.Context, h *Hub) (wait func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.Run(ctx)
	}()
	return func() { <-done }
}
