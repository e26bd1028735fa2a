package redis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/techlist/techlist"
)

// StreamConfig configures a StreamConsumer.
type StreamConfig struct {
	Stream   string // the stream the api-server appends to (REDIS_CHANNEL)
	Group    string // the consumer group all workers share
	Consumer string // this worker's name in the group, unique per process
	// Read is how many entries one read takes at most.
	Read int
	// Block is how long one read waits for new entries.
	Block time.Duration
	// ClaimIdle is the visibility timeout: an entry another consumer took
	// and has not acknowledged, nor kept (see StreamConsumer), for this
	// long is taken over.
	ClaimIdle time.Duration
	// MaxDeliveries is how many failed attempts an entry may have before
	// it goes to the dead-letter stream. Claims and restarts are not
	// attempts; a task that failed, or a batch given up at shutdown, is.
	MaxDeliveries int64
	// Logger receives the failures of the background refresh; nil
	// discards them.
	Logger *slog.Logger
}

func errorsKey(stream string) string { return stream + ":errors" }

// attemptsKey counts the failed attempts per entry id.
func attemptsKey(stream string) string { return slotKey(stream, ":attempts") }

// StreamConsumer reads a stream through a consumer group: at-least-once
// delivery. An entry is acknowledged (and deleted) only after its row is
// committed. While this process holds an entry (read into its buffer or
// handed out, and not yet acked, failed or rejected), a background refresh
// resets the entry's idle time every ClaimIdle/3, so no other worker
// claims it: a worker retrying its inserts while MySQL is down keeps its
// entries. Entries left pending by a worker that died (or failed by this
// one) are claimed after ClaimIdle. Failed attempts are counted per entry;
// at MaxDeliveries the entry goes to the dead-letter stream with its last
// error. Close stops the refresh.
type StreamConsumer struct {
	rdb       goredis.UniversalClient
	cfg       StreamConfig
	logger    *slog.Logger
	buf       []techlist.Delivery // read or claimed, not handed out yet (Receive's own)
	nextClaim time.Time
	dead      atomic.Int64

	mu   sync.Mutex
	held map[string]struct{} // in buf or handed out, not yet acked, failed or rejected

	stop      context.CancelFunc
	refreshed chan struct{} // closed when the refresh has stopped
	closeOnce sync.Once
}

// NewStreamConsumer joins the group, creating the stream and the group when
// they do not exist, and starts the refresh of the entries it will hold.
// A new group starts at the stream's beginning, so entries appended before
// any worker ran are delivered too. The caller calls Close.
func NewStreamConsumer(ctx context.Context, rdb goredis.UniversalClient, cfg StreamConfig) (*StreamConsumer, error) {
	if err := joinGroup(ctx, rdb, cfg); err != nil {
		return nil, err
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	refreshCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	s := &StreamConsumer{rdb: rdb, cfg: cfg, logger: logger, held: map[string]struct{}{},
		stop: stop, refreshed: make(chan struct{})}
	go s.keepHeld(refreshCtx)
	return s, nil
}

func joinGroup(ctx context.Context, rdb goredis.UniversalClient, cfg StreamConfig) error {
	err := rdb.XGroupCreateMkStream(ctx, cfg.Stream, cfg.Group, "0").Err()
	if err != nil && !strings.HasPrefix(err.Error(), "BUSYGROUP") {
		return fmt.Errorf("create consumer group %s on %s: %w", cfg.Group, cfg.Stream, err)
	}
	return nil
}

// Close stops refreshing the held entries: from then on they are claimed
// by another worker after ClaimIdle, as a dead worker's are. Call it after
// the last Ack, Fail or Reject.
func (s *StreamConsumer) Close() {
	s.closeOnce.Do(func() {
		s.stop()
		<-s.refreshed
	})
}

// DeadLettered returns how many entries this consumer moved to the
// dead-letter stream.
func (s *StreamConsumer) DeadLettered() int64 { return s.dead.Load() }

// Receive returns the next entry: one claimed from a dead consumer, or a
// new one. It blocks until there is one or ctx ends. Deliveries is the
// attempt this is: one more than the failed attempts counted so far.
func (s *StreamConsumer) Receive(ctx context.Context) (techlist.Delivery, error) {
	for {
		for len(s.buf) > 0 {
			d := s.buf[0]
			s.buf = s.buf[1:]
			if s.holds(d.ID) { // else another worker took it over meanwhile
				return d, nil
			}
		}
		if err := ctx.Err(); err != nil {
			return techlist.Delivery{}, err
		}
		if now := time.Now(); !now.Before(s.nextClaim) {
			s.nextClaim = now.Add(max(s.cfg.ClaimIdle/2, 100*time.Millisecond))
			if err := s.claim(ctx); err != nil {
				return techlist.Delivery{}, err
			}
			if len(s.buf) > 0 {
				continue
			}
		}
		if err := s.read(ctx); err != nil {
			return techlist.Delivery{}, err
		}
	}
}

// read takes up to Read new entries into the buffer, waiting up to Block.
func (s *StreamConsumer) read(ctx context.Context) error {
	res, err := s.rdb.XReadGroup(ctx, &goredis.XReadGroupArgs{
		Group:    s.cfg.Group,
		Consumer: s.cfg.Consumer,
		Streams:  []string{s.cfg.Stream, ">"},
		Count:    int64(s.cfg.Read),
		Block:    s.cfg.Block,
	}).Result()
	if errors.Is(err, goredis.Nil) {
		return nil // nothing new within Block
	}
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if strings.HasPrefix(err.Error(), "NOGROUP") {
			// The stream was deleted (FLUSHALL, say): join again.
			if err := joinGroup(ctx, s.rdb, s.cfg); err != nil {
				return err
			}
		}
		return fmt.Errorf("read stream %s: %w", s.cfg.Stream, err)
	}
	for _, st := range res {
		for _, m := range st.Messages {
			s.hold(m.ID)
			s.buf = append(s.buf, delivery(m, 1))
		}
	}
	return nil
}

func delivery(m goredis.XMessage, attempt int64) techlist.Delivery {
	payload, _ := m.Values[payloadField].(string)
	return techlist.Delivery{Payload: []byte(payload), ID: m.ID, Deliveries: attempt}
}

func (s *StreamConsumer) hold(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.held[id] = struct{}{}
}

// release drops ids from the held set: acked, failed, rejected, or taken
// over by another worker.
func (s *StreamConsumer) release(ids ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range ids {
		delete(s.held, id)
	}
}

func (s *StreamConsumer) holds(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.held[id]
	return ok
}

func (s *StreamConsumer) heldIDs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]string, 0, len(s.held))
	for id := range s.held {
		ids = append(ids, id)
	}
	return ids
}

// keepHeld refreshes the held entries every ClaimIdle/3 until ctx ends.
func (s *StreamConsumer) keepHeld(ctx context.Context) {
	defer close(s.refreshed)
	tick := time.NewTicker(max(s.cfg.ClaimIdle/3, 10*time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if err := s.refresh(ctx); err != nil && ctx.Err() == nil {
			s.logger.Warn("refreshing the held stream entries failed; another worker may claim them after CLAIM_IDLE", "err", err)
		}
	}
}

// keepPending resets the idle time of the given entries that are still
// pending for this consumer, with XCLAIM JUSTID (which does not count a
// delivery), and returns the others: acknowledged meanwhile, or claimed
// by another worker while this one could not refresh them.
//
// KEYS: stream. ARGV: group, consumer, entry ids.
var keepPending = goredis.NewScript(`
local mine, lost = {}, {}
for i = 3, #ARGV do
  local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1, ARGV[2])
  if #p == 1 then mine[#mine + 1] = ARGV[i] else lost[#lost + 1] = ARGV[i] end
end
if #mine > 0 then
  mine[#mine + 1] = 'JUSTID' -- after the ids; unpack must come last
  redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, unpack(mine))
end
return lost
`)

// refresh runs keepPending over the held entries, 500 at a time, and
// lets go of the lost ones.
func (s *StreamConsumer) refresh(ctx context.Context) error {
	ids := s.heldIDs()
	for len(ids) > 0 {
		n := min(len(ids), 500)
		args := make([]any, 0, n+2)
		args = append(args, s.cfg.Group, s.cfg.Consumer)
		for _, id := range ids[:n] {
			args = append(args, id)
		}
		ids = ids[n:]
		lost, err := keepPending.Run(ctx, s.rdb, []string{s.cfg.Stream}, args...).StringSlice()
		if err != nil {
			return fmt.Errorf("refresh held entries of %s: %w", s.cfg.Stream, err)
		}
		s.release(lost...)
	}
	return nil
}

// claim takes over the entries left pending for ClaimIdle (by a consumer
// that died, or by this one after a failure), and moves those that failed
// MaxDeliveries attempts to the dead-letter stream. A claim is not an
// attempt: the delivery's attempt number comes from the failures counted.
func (s *StreamConsumer) claim(ctx context.Context) error {
	pending, err := s.rdb.XPendingExt(ctx, &goredis.XPendingExtArgs{
		Stream: s.cfg.Stream, Group: s.cfg.Group, Idle: s.cfg.ClaimIdle,
		Start: "-", End: "+", Count: int64(max(s.cfg.Read, 10)),
	}).Result()
	if err != nil {
		return fmt.Errorf("list pending entries of %s: %w", s.cfg.Stream, err)
	}
	var ids []string
	for _, p := range pending {
		if !s.holds(p.ID) {
			ids = append(ids, p.ID)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	msgs, err := s.rdb.XClaim(ctx, &goredis.XClaimArgs{
		Stream: s.cfg.Stream, Group: s.cfg.Group, Consumer: s.cfg.Consumer,
		MinIdle: s.cfg.ClaimIdle, Messages: ids,
	}).Result()
	if err != nil || len(msgs) == 0 {
		if err != nil {
			return fmt.Errorf("claim pending entries of %s: %w", s.cfg.Stream, err)
		}
		return nil
	}
	return s.takeClaimed(ctx, msgs)
}

// takeClaimed buffers the claimed entries, or dead-letters those whose
// failed attempts reached MaxDeliveries.
func (s *StreamConsumer) takeClaimed(ctx context.Context, msgs []goredis.XMessage) error {
	claimed := make([]string, len(msgs))
	for i, m := range msgs {
		claimed[i] = m.ID
	}
	counts, err := s.rdb.HMGet(ctx, attemptsKey(s.cfg.Stream), claimed...).Result()
	if err != nil {
		return fmt.Errorf("read the failed attempts of %d claimed entries: %w", len(msgs), err)
	}
	for i, m := range msgs {
		str, _ := counts[i].(string)
		failed, _ := strconv.ParseInt(str, 10, 64)
		if failed < s.cfg.MaxDeliveries {
			s.hold(m.ID)
			s.buf = append(s.buf, delivery(m, failed+1))
			continue
		}
		lastErr, _ := s.rdb.HGet(ctx, errorsKey(s.cfg.Stream), m.ID).Result()
		if lastErr == "" {
			lastErr = "not stored after " + str + " failed attempts"
		}
		if err := s.deadLetter(ctx, delivery(m, failed), errors.New(lastErr), failed); err != nil {
			return err
		}
	}
	return nil
}

// Ack acknowledges entries whose rows are committed, and deletes them, in
// one round trip.
func (s *StreamConsumer) Ack(ctx context.Context, ds ...techlist.Delivery) error {
	ids := make([]string, 0, len(ds))
	for _, d := range ds {
		if d.ID != "" {
			ids = append(ids, d.ID)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	_, err := s.rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
		s.queueAckIDs(ctx, p, ids)
		return nil
	})
	if err != nil {
		return fmt.Errorf("acknowledge %d entries of %s: %w", len(ids), s.cfg.Stream, err)
	}
	return nil
}

// queueAck queues the acknowledgement of ds on p (see Settler).
func (s *StreamConsumer) queueAck(ctx context.Context, p goredis.Pipeliner, ds []techlist.Delivery) {
	ids := make([]string, 0, len(ds))
	for _, d := range ds {
		if d.ID != "" {
			ids = append(ids, d.ID)
		}
	}
	if len(ids) > 0 {
		s.queueAckIDs(ctx, p, ids)
	}
}

// queueAckIDs lets go of ids and queues their XACK, their XDEL and the
// deletion of their failure records.
func (s *StreamConsumer) queueAckIDs(ctx context.Context, p goredis.Pipeliner, ids []string) {
	s.release(ids...)
	p.XAck(ctx, s.cfg.Stream, s.cfg.Group, ids...)
	p.XDel(ctx, s.cfg.Stream, ids...)
	p.HDel(ctx, errorsKey(s.cfg.Stream), ids...)
	p.HDel(ctx, attemptsKey(s.cfg.Stream), ids...)
}

// Fail counts a failed attempt of an entry and records why. The entry
// stays pending and is delivered again after ClaimIdle; at MaxDeliveries
// failed attempts it goes to the dead-letter stream with this error.
func (s *StreamConsumer) Fail(ctx context.Context, d techlist.Delivery, reason error) error {
	if d.ID == "" {
		return nil
	}
	s.release(d.ID)
	var failed *goredis.IntCmd
	_, err := s.rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
		failed = p.HIncrBy(ctx, attemptsKey(s.cfg.Stream), d.ID, 1)
		p.HSet(ctx, errorsKey(s.cfg.Stream), d.ID, reason.Error())
		return nil
	})
	if err != nil {
		return fmt.Errorf("record failure of %s: %w", d.ID, err)
	}
	if n := failed.Val(); n >= s.cfg.MaxDeliveries {
		return s.deadLetter(ctx, d, reason, n)
	}
	return nil
}

// Reject moves an entry to the dead-letter stream with reason, and
// acknowledges it: it will never be stored.
func (s *StreamConsumer) Reject(ctx context.Context, d techlist.Delivery, reason error) error {
	if d.ID == "" {
		return nil
	}
	return s.deadLetter(ctx, d, reason, d.Deliveries)
}

func (s *StreamConsumer) deadLetter(ctx context.Context, d techlist.Delivery, reason error, attempts int64) error {
	err := s.rdb.XAdd(ctx, &goredis.XAddArgs{
		Stream: DeadStream(s.cfg.Stream),
		Values: []any{payloadField, string(d.Payload), "entry", d.ID, "error", reason.Error(),
			"attempts", attempts, "consumer", s.cfg.Consumer, "at", time.Now().UTC().Format(time.RFC3339Nano)},
	}).Err()
	if err != nil {
		return fmt.Errorf("dead-letter %s: %w", d.ID, err)
	}
	s.dead.Add(1)
	return s.Ack(ctx, d)
}
