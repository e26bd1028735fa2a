package redis

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/techlist/techlist"
	"github.com/techlist/techlist/retry"
)

// ChannelConfig says which channel a ChannelConsumer reads and how.
type ChannelConfig struct {
	Channel string
	Worker  string // this worker's name in the channel's register of live workers (unique per process)
	// Buffer is how many messages read from the channel may be unsettled
	// (waiting for the worker, or taken and not yet acknowledged, failed
	// or rejected) before the worker leaves the channel; it joins again
	// once half of them are settled. This bounds what a worker holds that
	// exists nowhere else, whatever its batching, and what is lost if it
	// must stop while MySQL is down.
	Buffer int
	// Lease is how long the worker counts as live without a renewal
	// (default 3s); it renews every third of it while its subscription
	// answers pings.
	Lease time.Duration
	// ConfirmTimeout bounds the wait for Redis to confirm an unsubscribe
	// and, at start, a subscription (default 5s).
	ConfirmTimeout time.Duration
	Logger         *slog.Logger // nil: no logging
}

// ChannelConsumer is the worker's side of the pub/sub channel. One reader
// reads the subscription without pause into a bounded in-process backlog,
// so Redis never has to buffer for a slow worker (and never drops it as a
// slow subscriber). The worker takes messages from the backlog. The
// consumer holds a lease in the register of live workers while Redis has
// confirmed its subscription (see Presence), and leaves the channel in a
// fixed order: withdraw the lease (from then on, publishes are refused
// unless another worker is live), UNSUBSCRIBE, and read on until Redis
// confirms: everything published before is delivered and kept. It leaves
// when its backlog reaches Buffer (and joins again when half is taken) and
// when Stop is called (and then for good: Receive returns
// techlist.ErrDrained once the backlog is empty).
type ChannelConsumer struct {
	rdb      goredis.UniversalClient
	cfg      ChannelConfig
	presence *Presence
	logger   *slog.Logger
	queue    *backlog

	stop     chan struct{} // closed by Stop
	stopOnce sync.Once
	ready    chan struct{} // closed at the first registration
	done     chan struct{} // closed when run returns
	cancel   context.CancelFunc
}

// NewChannelConsumer subscribes to cfg.Channel (sharded on a cluster),
// waits until Redis confirms and the worker's lease is registered, and
// returns: from then on, publishes are received. The caller closes it.
func NewChannelConsumer(ctx context.Context, rdb goredis.UniversalClient, cfg ChannelConfig) (*ChannelConsumer, error) {
	if cfg.Lease <= 0 {
		cfg.Lease = 3 * time.Second
	}
	if cfg.ConfirmTimeout <= 0 {
		cfg.ConfirmTimeout = 5 * time.Second
	}
	if cfg.Buffer < 1 {
		cfg.Buffer = 1
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	c := &ChannelConsumer{rdb: rdb, cfg: cfg, logger: logger.With("channel", cfg.Channel),
		presence: NewPresence(rdb, cfg.Channel, cfg.Worker, cfg.Lease), queue: newBacklog(cfg.Buffer),
		stop: make(chan struct{}), ready: make(chan struct{}), done: make(chan struct{}), cancel: cancel}
	go c.run(runCtx)
	wait, cancelWait := context.WithTimeout(ctx, cfg.ConfirmTimeout)
	defer cancelWait()
	select {
	case <-c.ready:
		return c, nil
	case <-wait.Done():
		c.Close()
		return nil, fmt.Errorf("subscribe to %s: not confirmed and registered within %s: %w", cfg.Channel, cfg.ConfirmTimeout, wait.Err())
	}
}

// Receive takes the oldest message read, blocking until there is one or
// ctx ends. After Stop, once the subscription has ended and every message
// read was taken, it returns techlist.ErrDrained.
func (c *ChannelConsumer) Receive(ctx context.Context) (techlist.Delivery, error) {
	return c.queue.take(ctx)
}

// ReceiveBuffered appends to ds up to n messages already read, as Receive
// would hand them out, without waiting.
func (c *ChannelConsumer) ReceiveBuffered(ds []techlist.Delivery, n int) []techlist.Delivery {
	return c.queue.takeBuffered(ds, n)
}

// Buffered returns how many messages were read and not yet taken.
func (c *ChannelConsumer) Buffered() int { return c.queue.len() }

// Unsettled returns how many messages were read and not yet settled
// (Ack, Fail or Reject): the count Buffer bounds.
func (c *ChannelConsumer) Unsettled() int { return c.queue.unsettled() }

// Each message taken must be settled exactly once, by Ack, Fail or
// Reject; pub/sub keeps nothing to acknowledge, deliver again or move
// aside, so settling only makes room under Buffer.

// Ack settles messages whose rows are stored.
func (c *ChannelConsumer) Ack(_ context.Context, ds ...techlist.Delivery) error {
	c.queue.settle(len(ds))
	return nil
}

// queueAck settles ds; pub/sub has nothing to tell Redis (see Settler).
func (c *ChannelConsumer) queueAck(_ context.Context, _ goredis.Pipeliner, ds []techlist.Delivery) {
	c.queue.settle(len(ds))
}

// Fail settles a message whose work failed: pub/sub cannot deliver it
// again, so it is lost (the caller logs it).
func (c *ChannelConsumer) Fail(context.Context, techlist.Delivery, error) error {
	c.queue.settle(1)
	return nil
}

// Reject settles a malformed message.
func (c *ChannelConsumer) Reject(context.Context, techlist.Delivery, error) error {
	c.queue.settle(1)
	return nil
}

// Stop leaves the channel for good (withdraw, unsubscribe, read until
// Redis confirms) without waiting; Receive hands out the rest.
func (c *ChannelConsumer) Stop() { c.stopOnce.Do(func() { close(c.stop) }) }

// Close stops, ends the subscription's connection and waits for the
// reader. Messages still in the backlog are lost, and logged.
func (c *ChannelConsumer) Close() error {
	c.Stop()
	c.cancel()
	<-c.done
	if lost := c.queue.drop(); len(lost) > 0 {
		c.logger.Error("closed with messages read and not handed out: they are lost", "messages", len(lost), "ids", envelopeIDs(lost))
	}
	return nil
}

// envelopeIDs returns the ids of the envelopes in ds, for a log line that
// says which were lost ("?" for a payload that is no envelope).
func envelopeIDs(ds []techlist.Delivery) []string {
	ids := make([]string, len(ds))
	for i, d := range ds {
		ids[i] = "?"
		if env, err := techlist.DecodeEnvelope(d.Payload); err == nil {
			ids[i] = env.ID
		}
	}
	return ids
}

// leaveReason says why listen returned.
type leaveReason int

const (
	stopping   leaveReason = iota // Stop or Close
	bufferFull                    // the backlog reached Buffer
	lost                          // Redis ended the subscription (e.g. a slot moved)
)

// run joins, listens, leaves when asked or when the backlog is full, and
// joins again when there is room, until Stop.
func (c *ChannelConsumer) run(ctx context.Context) {
	defer close(c.done)
	defer c.queue.close()
	for {
		s := c.join(ctx)
		reason := c.listen(ctx, s)
		c.leave(ctx, s)
		switch reason {
		case stopping:
			return
		case bufferFull:
			c.logger.Warn("left the channel: the worker holds as many unstored messages as PUBSUB_BUFFER allows (is MySQL slow or down?); publishes are refused until half are stored",
				"unsettled", c.queue.unsettled(), "buffered", c.queue.len(), "bound", c.cfg.Buffer)
			if !c.waitForRoom(ctx) {
				return
			}
			c.logger.Info("joining the channel again: half the messages held are stored", "unsettled", c.queue.unsettled())
		case lost:
			c.logger.Warn("Redis ended the subscription; joining again")
			if !c.pause(ctx, time.Second) {
				return
			}
		}
	}
}

// waitForRoom waits until the unsettled messages are down to half the
// bound; false when stopped first.
func (c *ChannelConsumer) waitForRoom(ctx context.Context) bool {
	for c.queue.unsettled() > c.queue.low {
		select {
		case <-c.queue.room:
		case <-c.stop:
			return false
		case <-ctx.Done():
			return false
		}
	}
	return true
}

// pause waits d; false when stopped first.
func (c *ChannelConsumer) pause(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-c.stop:
	case <-ctx.Done():
	}
	return false
}

// Confirmations of a subscription or its end, by kind.
func isSubscribeKind(kind string) bool   { return kind == "subscribe" || kind == "ssubscribe" }
func isUnsubscribeKind(kind string) bool { return kind == "unsubscribe" || kind == "sunsubscribe" }

// session is one subscription on a connection of its own, read by its own
// goroutine from the SUBSCRIBE until Redis confirms the UNSUBSCRIBE (or
// the connection is closed).
type session struct {
	ps      *goredis.PubSub
	channel string
	sharded bool

	subscribed atomic.Bool   // Redis confirmed the subscription, and no read failed since
	leaving    atomic.Bool   // UNSUBSCRIBE sent: the reader ends at its confirmation or the next error
	pongs      atomic.Int64  // answers to pings on the subscription's connection
	changed    chan struct{} // a token when subscribed changes
	quit       chan struct{} // closed to end the reader's waits between retries
	done       chan struct{} // closed when the reader returns
}

// join subscribes on a new connection and starts its reader. go-redis
// swallows a failed SUBSCRIBE here; the reader's next read reconnects and
// subscribes again, and listen registers the worker once Redis confirms.
func (c *ChannelConsumer) join(ctx context.Context) *session {
	s := &session{channel: c.cfg.Channel, sharded: isCluster(c.rdb),
		changed: make(chan struct{}, 1), quit: make(chan struct{}), done: make(chan struct{})}
	if s.sharded {
		s.ps = c.rdb.SSubscribe(ctx, s.channel)
	} else {
		s.ps = c.rdb.Subscribe(ctx, s.channel)
	}
	go c.read(s)
	return s
}

func (s *session) setSubscribed(v bool) {
	if s.subscribed.Swap(v) != v {
		signal(s.changed)
	}
}

// read reads the subscription without pause: messages into the backlog,
// confirmations and pongs into the session's state. It never waits on the
// worker. A blocked read does not watch a context; leave ends it by
// closing the connection.
func (c *ChannelConsumer) read(s *session) {
	defer close(s.done)
	backoff := retry.Backoff{Min: 100 * time.Millisecond, Max: 2 * time.Second}
	for {
		msg, err := s.ps.Receive(context.Background())
		if err != nil {
			s.setSubscribed(false)
			if s.leaving.Load() {
				return // nothing more can come on that connection
			}
			wait := backoff.Next()
			c.logger.Warn("reading the subscription failed; reconnecting", "err", err, "in", wait)
			t := time.NewTimer(wait)
			select {
			case <-s.quit:
				t.Stop()
				return
			case <-t.C:
			}
			continue
		}
		backoff.Reset()
		switch m := msg.(type) {
		case *goredis.Message:
			c.queue.push(techlist.Delivery{Payload: []byte(m.Payload)})
		case *goredis.Pong:
			s.pongs.Add(1)
		case *goredis.Subscription:
			switch {
			case isSubscribeKind(m.Kind):
				s.setSubscribed(true)
			case isUnsubscribeKind(m.Kind) && m.Count == 0:
				// Asked for by leave, or Redis' own (a cluster slot moved):
				// either way nothing more arrives.
				s.setSubscribed(false)
				return
			}
		}
	}
}

// listen keeps the worker's lease while the subscription is confirmed and
// its connection answers pings, until Stop, a full backlog, or the end of
// the subscription.
func (c *ChannelConsumer) listen(ctx context.Context, s *session) leaveReason {
	tick := time.NewTicker(c.cfg.Lease / 3)
	defer tick.Stop()
	var pongsSeen int64
	pinged := false
	for {
		select {
		case <-c.stop:
			return stopping
		case <-ctx.Done():
			return stopping
		case <-s.done:
			return lost
		case <-c.queue.full:
			if c.queue.unsettled() >= c.cfg.Buffer {
				return bufferFull
			}
		case <-s.changed:
			if s.subscribed.Load() {
				c.renew(ctx)
			} else {
				c.withdraw() // the connection failed: it may be a while before it is back
			}
		case <-tick.C:
			if !s.subscribed.Load() {
				continue
			}
			if p := s.pongs.Load(); pinged && p == pongsSeen {
				c.logger.Warn("the subscription's connection did not answer a ping; the lease is not renewed")
			} else {
				c.renew(ctx)
			}
			pongsSeen = s.pongs.Load()
			pinged = s.ps.Ping(ctx) == nil
		}
	}
}

// renew registers the worker or extends its lease; the first success
// makes NewChannelConsumer return.
func (c *ChannelConsumer) renew(ctx context.Context) {
	rctx, cancel := context.WithTimeout(ctx, c.cfg.Lease/3)
	defer cancel()
	if err := c.presence.Renew(rctx); err != nil {
		c.logger.Warn("renewing the lease failed", "err", err)
		return
	}
	select {
	case <-c.ready:
	default:
		close(c.ready)
	}
}

// withdraw removes the worker's lease. It runs also while closing, so it
// has a context of its own.
func (c *ChannelConsumer) withdraw() {
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.ConfirmTimeout)
	defer cancel()
	if err := c.presence.Withdraw(ctx); err != nil {
		c.logger.Warn("withdrawing from the register of workers failed; the lease ends by itself", "err", err, "lease", c.cfg.Lease)
	}
}

// leave withdraws the lease, then unsubscribes and lets the reader read on
// until Redis confirms: every message published before the withdrawal
// reaches the backlog. Close cuts the wait short, and so does a Redis that
// does not confirm within ConfirmTimeout.
func (c *ChannelConsumer) leave(ctx context.Context, s *session) {
	c.withdraw()
	s.leaving.Store(true)
	uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.cfg.ConfirmTimeout)
	defer cancel()
	var err error
	if s.sharded {
		err = s.ps.SUnsubscribe(uctx, s.channel)
	} else {
		err = s.ps.Unsubscribe(uctx, s.channel)
	}
	if err != nil {
		c.logger.Warn("unsubscribing failed", "err", err)
	}
	select {
	case <-s.done:
	case <-uctx.Done():
		c.logger.Error("Redis did not confirm the unsubscribe in time; closing the subscription (what is still in its socket is lost)",
			"timeout", c.cfg.ConfirmTimeout)
	case <-ctx.Done():
		c.logger.Error("closed before Redis confirmed the unsubscribe (what is still in its socket is lost)")
	}
	close(s.quit)
	s.ps.Close()
	<-s.done
}
