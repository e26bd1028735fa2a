package redis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
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
	Stream string // the stream the api-server appends to (REDIS_CHANNEL)
	// Partitions is STREAM_PARTITIONS: the consumer reads these partitions
	// of Stream (see PartitionStreams), and also Stream itself and every
	// partition registered (see KnownStreams). 0 is 1.
	Partitions int
	Group      string // the consumer group all workers share, one per stream
	Consumer   string // this worker's name in the group, unique per process
	// Read is how many entries one read of one stream takes at most.
	Read int
	// Block is how long a read waits for new entries when every stream is
	// empty; with several streams the wait goes to one stream at a time,
	// in turn, for Block divided by their number (100 ms at most).
	Block time.Duration
	// ClaimIdle is the visibility timeout: an entry another consumer took
	// and has not acknowledged, nor kept (see StreamConsumer), for this
	// long is taken over.
	ClaimIdle time.Duration
	// MaxDeliveries is how many failed attempts an entry may have before
	// it goes to the dead-letter stream. Claims and restarts are not
	// attempts; a task that failed, or a batch given up at shutdown, is.
	MaxDeliveries int64
	// Rescan is how often the registered partitions are read again, to
	// join those an api-server started since registered; 0 is 10 s.
	Rescan time.Duration
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
//
// With partitions it reads each partition's stream through its own group
// (same name), and does all of the above per partition. It hands out the
// entries in turns, one from each partition that has some, and reads again
// only when all it read is handed out, at most Read from each: a busy
// partition cannot starve the others.
type StreamConsumer struct {
	rdb    goredis.UniversalClient
	cfg    StreamConfig
	logger *slog.Logger
	dead   atomic.Int64

	mu    sync.Mutex
	parts []*streamPart // only appended to (by Receive, on a rescan)

	// Receive's own:
	turn     int // the partition whose entry is handed out next
	wait     int // the partition the next blocking read waits on
	nextScan time.Time

	stop      context.CancelFunc
	refreshed chan struct{} // closed when the refresh has stopped
	closeOnce sync.Once
}

// streamPart is one stream a StreamConsumer reads.
type streamPart struct {
	index     int
	stream    string
	buf       []techlist.Delivery // read or claimed, not handed out yet (Receive's own)
	nextClaim time.Time           // Receive's own

	mu   sync.Mutex
	held map[string]struct{} // in buf or handed out, not yet acked, failed or rejected
}

// NewStreamConsumer joins the group of each stream it reads (see
// StreamConfig.Partitions), creating the streams and the groups when they
// do not exist, and starts the refresh of the entries it will hold. A new
// group starts at the stream's beginning, so entries appended before any
// worker ran are delivered too. The caller calls Close.
func NewStreamConsumer(ctx context.Context, rdb goredis.UniversalClient, cfg StreamConfig) (*StreamConsumer, error) {
	cfg.Partitions = max(cfg.Partitions, 1)
	if cfg.Rescan <= 0 {
		cfg.Rescan = 10 * time.Second
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	refreshCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	s := &StreamConsumer{rdb: rdb, cfg: cfg, logger: logger, stop: stop, refreshed: make(chan struct{})}
	if err := s.rescan(ctx); err != nil {
		stop()
		return nil, err
	}
	go s.keepHeld(refreshCtx)
	return s, nil
}

// rescan joins the streams of KnownStreams not joined yet.
func (s *StreamConsumer) rescan(ctx context.Context) error {
	s.nextScan = time.Now().Add(s.cfg.Rescan)
	streams, err := KnownStreams(ctx, s.rdb, s.cfg.Stream, s.cfg.Partitions)
	if err != nil {
		return err
	}
	for _, stream := range streams {
		if slices.ContainsFunc(s.partsNow(), func(p *streamPart) bool { return p.stream == stream }) {
			continue
		}
		if err := joinGroup(ctx, s.rdb, stream, s.cfg.Group); err != nil {
			return err
		}
		s.mu.Lock()
		s.parts = append(s.parts, &streamPart{index: len(s.parts), stream: stream, held: map[string]struct{}{}})
		s.mu.Unlock()
	}
	return nil
}

func joinGroup(ctx context.Context, rdb goredis.UniversalClient, stream, group string) error {
	err := rdb.XGroupCreateMkStream(ctx, stream, group, "0").Err()
	if err != nil && !strings.HasPrefix(err.Error(), "BUSYGROUP") {
		return fmt.Errorf("create consumer group %s on %s: %w", group, stream, err)
	}
	return nil
}

func (s *StreamConsumer) partsNow() []*streamPart {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.parts
}

func (s *StreamConsumer) part(i int) (*streamPart, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if i < 0 || i >= len(s.parts) {
		return nil, fmt.Errorf("no stream partition %d", i)
	}
	return s.parts[i], nil
}

// Streams returns the names of the streams the consumer reads, by
// partition index (techlist.Delivery.Partition).
func (s *StreamConsumer) Streams() []string {
	parts := s.partsNow()
	out := make([]string, len(parts))
	for i, p := range parts {
		out[i] = p.stream
	}
	return out
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
// dead-letter streams.
func (s *StreamConsumer) DeadLettered() int64 { return s.dead.Load() }

// Receive returns the next entry: one claimed from a dead consumer, or a
// new one. It blocks until there is one or ctx ends. Deliveries is the
// attempt this is: one more than the failed attempts counted so far.
func (s *StreamConsumer) Receive(ctx context.Context) (techlist.Delivery, error) {
	for {
		if d, ok := s.nextBuffered(); ok {
			return d, nil
		}
		if err := ctx.Err(); err != nil {
			return techlist.Delivery{}, err
		}
		if time.Now().After(s.nextScan) {
			if err := s.rescan(ctx); err != nil {
				return techlist.Delivery{}, err
			}
		}
		s.claimDue(ctx)
		if s.buffered() {
			continue
		}
		if err := s.readAll(ctx); err != nil {
			return techlist.Delivery{}, err
		}
	}
}

// nextBuffered hands out the first buffered entry of the partition whose
// turn it is, or of the next that has one, and passes the turn on.
func (s *StreamConsumer) nextBuffered() (techlist.Delivery, bool) {
	parts := s.partsNow()
	for i := range parts {
		p := parts[(s.turn+i)%len(parts)]
		for len(p.buf) > 0 {
			d := p.buf[0]
			p.buf = p.buf[1:]
			if p.holds(d.ID) { // else another worker took it over meanwhile
				s.turn = (p.index + 1) % len(parts)
				return d, true
			}
		}
	}
	return techlist.Delivery{}, false
}

// Buffered is how many entries read are not handed out yet (some may
// prove taken over by another worker meanwhile, and be skipped).
func (s *StreamConsumer) Buffered() int {
	n := 0
	for _, p := range s.partsNow() {
		n += len(p.buf)
	}
	return n
}

// ReceiveBuffered appends to ds up to n entries already read, as Receive
// would hand them out, without a round trip or waiting: the worker takes
// a share of a read at once rather than one entry per call.
func (s *StreamConsumer) ReceiveBuffered(ds []techlist.Delivery, n int) []techlist.Delivery {
	for range n {
		d, ok := s.nextBuffered()
		if !ok {
			break
		}
		ds = append(ds, d)
	}
	return ds
}

func (s *StreamConsumer) buffered() bool {
	return slices.ContainsFunc(s.partsNow(), func(p *streamPart) bool { return len(p.buf) > 0 })
}

// claimDue runs the claim of each partition whose time has come. A failed
// claim is logged and tried again at the partition's next claim: it must
// not keep the worker from reading the other partitions (or this one,
// when only the claim failed).
func (s *StreamConsumer) claimDue(ctx context.Context) {
	for _, p := range s.partsNow() {
		if now := time.Now(); !now.Before(p.nextClaim) {
			p.nextClaim = now.Add(max(s.cfg.ClaimIdle/2, 100*time.Millisecond))
			if err := s.claim(ctx, p); err != nil && ctx.Err() == nil {
				s.logger.Warn("claiming the stale entries of a stream failed; trying again at its next claim", "stream", p.stream, "err", err)
			}
		}
	}
}

// maxPartitionWait bounds the wait on one of several streams: an entry
// appended to another is read at the latest that much later.
const maxPartitionWait = 100 * time.Millisecond

// readAll reads new entries. One stream is read waiting up to Block. With
// several, each is read without waiting, side by side (one pipeline; on a
// cluster, one per node at once, since one XREADGROUP cannot span slots);
// when none had any, one of them, in turn, is read waiting Block/n, at
// most maxPartitionWait. A stream whose read failed (its master down, say)
// does not hold up the entries read from the others.
func (s *StreamConsumer) readAll(ctx context.Context) error {
	parts := s.partsNow()
	if len(parts) == 1 {
		return s.read(ctx, parts, s.cfg.Block)
	}
	err := s.read(ctx, parts, -1)
	if s.buffered() {
		if err != nil && ctx.Err() == nil {
			s.logger.Warn("reading some stream partitions failed; handing out what the others had", "err", err)
		}
		return nil
	}
	if err != nil {
		return err
	}
	p := parts[s.wait%len(parts)]
	s.wait = (s.wait + 1) % len(parts)
	return s.read(ctx, []*streamPart{p}, min(s.cfg.Block/time.Duration(len(parts)), maxPartitionWait))
}

// read takes up to Read new entries of each of parts into their buffers,
// waiting up to block (none when negative; several parts are never read
// waiting). A partition whose read failed does not keep the others'
// entries from being buffered.
// A blocking read goes alone: a pipeline's replies are awaited for the
// client's read timeout only, not for the block.
func (s *StreamConsumer) read(ctx context.Context, parts []*streamPart, block time.Duration) error {
	cmds := make([]*goredis.XStreamSliceCmd, len(parts))
	args := func(p *streamPart) *goredis.XReadGroupArgs {
		return &goredis.XReadGroupArgs{Group: s.cfg.Group, Consumer: s.cfg.Consumer,
			Streams: []string{p.stream, ">"}, Count: int64(s.cfg.Read), Block: block}
	}
	if len(parts) == 1 {
		cmds[0] = s.rdb.XReadGroup(ctx, args(parts[0]))
	} else {
		_, _ = s.rdb.Pipelined(ctx, func(pipe goredis.Pipeliner) error {
			for i, p := range parts {
				cmds[i] = pipe.XReadGroup(ctx, args(p))
			}
			return nil
		})
	}
	var errs []error
	for i, p := range parts {
		res, err := cmds[i].Result()
		if errors.Is(err, goredis.Nil) {
			continue // nothing new
		}
		if err != nil {
			errs = append(errs, s.readFailed(ctx, p, err))
			continue
		}
		for _, st := range res {
			p.holdRead(st.Messages)
			for _, m := range st.Messages {
				p.buf = append(p.buf, delivery(m, 1, p.index))
			}
		}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return errors.Join(errs...)
}

// readFailed joins the group again when the stream was deleted (FLUSHALL,
// say), and returns the read's error.
func (s *StreamConsumer) readFailed(ctx context.Context, p *streamPart, err error) error {
	if strings.HasPrefix(err.Error(), "NOGROUP") {
		if err := joinGroup(ctx, s.rdb, p.stream, s.cfg.Group); err != nil {
			return err
		}
	}
	return fmt.Errorf("read stream %s: %w", p.stream, err)
}

func delivery(m goredis.XMessage, attempt int64, partition int) techlist.Delivery {
	payload, _ := m.Values[payloadField].(string)
	return techlist.Delivery{Payload: []byte(payload), ID: m.ID, Deliveries: attempt, Partition: partition}
}

func (p *streamPart) hold(id string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.held[id] = struct{}{}
}

// holdRead holds the entries of a read, under one lock for all.
func (p *streamPart) holdRead(msgs []goredis.XMessage) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, m := range msgs {
		p.held[m.ID] = struct{}{}
	}
}

// release drops ids from the held set: acked, failed, rejected, or taken
// over by another worker.
func (p *streamPart) release(ids ...string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, id := range ids {
		delete(p.held, id)
	}
}

func (p *streamPart) holds(id string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, ok := p.held[id]
	return ok
}

func (p *streamPart) heldIDs() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	ids := make([]string, 0, len(p.held))
	for id := range p.held {
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
		for _, p := range s.partsNow() {
			if err := s.refresh(ctx, p); err != nil && ctx.Err() == nil {
				s.logger.Warn("refreshing the held stream entries failed; another worker may claim them after CLAIM_IDLE", "err", err)
			}
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

// refresh runs keepPending over p's held entries, 500 at a time, and
// lets go of the lost ones.
func (s *StreamConsumer) refresh(ctx context.Context, p *streamPart) error {
	ids := p.heldIDs()
	for len(ids) > 0 {
		n := min(len(ids), 500)
		args := make([]any, 0, n+2)
		args = append(args, s.cfg.Group, s.cfg.Consumer)
		for _, id := range ids[:n] {
			args = append(args, id)
		}
		ids = ids[n:]
		lost, err := keepPending.Run(ctx, s.rdb, []string{p.stream}, args...).StringSlice()
		if err != nil {
			return fmt.Errorf("refresh held entries of %s: %w", p.stream, err)
		}
		p.release(lost...)
	}
	return nil
}

// claim takes over p's entries left pending for ClaimIdle (by a consumer
// that died, or by this one after a failure), and moves those that failed
// MaxDeliveries attempts to the dead-letter stream. A claim is not an
// attempt: the delivery's attempt number comes from the failures counted.
func (s *StreamConsumer) claim(ctx context.Context, p *streamPart) error {
	pending, err := s.rdb.XPendingExt(ctx, &goredis.XPendingExtArgs{
		Stream: p.stream, Group: s.cfg.Group, Idle: s.cfg.ClaimIdle,
		Start: "-", End: "+", Count: int64(max(s.cfg.Read, 10)),
	}).Result()
	if err != nil {
		return fmt.Errorf("list pending entries of %s: %w", p.stream, err)
	}
	var ids []string
	for _, e := range pending {
		if !p.holds(e.ID) {
			ids = append(ids, e.ID)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	msgs, err := s.rdb.XClaim(ctx, &goredis.XClaimArgs{
		Stream: p.stream, Group: s.cfg.Group, Consumer: s.cfg.Consumer,
		MinIdle: s.cfg.ClaimIdle, Messages: ids,
	}).Result()
	if err != nil || len(msgs) == 0 {
		if err != nil {
			return fmt.Errorf("claim pending entries of %s: %w", p.stream, err)
		}
		return nil
	}
	return s.takeClaimed(ctx, p, msgs)
}

// takeClaimed buffers the claimed entries, or dead-letters those whose
// failed attempts reached MaxDeliveries.
func (s *StreamConsumer) takeClaimed(ctx context.Context, p *streamPart, msgs []goredis.XMessage) error {
	claimed := make([]string, len(msgs))
	for i, m := range msgs {
		claimed[i] = m.ID
	}
	counts, err := s.rdb.HMGet(ctx, attemptsKey(p.stream), claimed...).Result()
	if err != nil {
		return fmt.Errorf("read the failed attempts of %d claimed entries: %w", len(msgs), err)
	}
	for i, m := range msgs {
		str, _ := counts[i].(string)
		failed, _ := strconv.ParseInt(str, 10, 64)
		if failed < s.cfg.MaxDeliveries {
			p.hold(m.ID)
			p.buf = append(p.buf, delivery(m, failed+1, p.index))
			continue
		}
		lastErr, _ := s.rdb.HGet(ctx, errorsKey(p.stream), m.ID).Result()
		if lastErr == "" {
			lastErr = "not stored after " + str + " failed attempts"
		}
		if err := s.deadLetter(ctx, delivery(m, failed, p.index), errors.New(lastErr), failed); err != nil {
			return err
		}
	}
	return nil
}

// Ack acknowledges entries whose rows are committed, and deletes them, in
// one round trip (on a cluster, one per node holding some, side by side).
func (s *StreamConsumer) Ack(ctx context.Context, ds ...techlist.Delivery) error {
	if !slices.ContainsFunc(ds, func(d techlist.Delivery) bool { return d.ID != "" }) {
		return nil
	}
	_, err := s.rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
		s.queueAck(ctx, p, ds)
		return nil
	})
	if err != nil {
		return fmt.Errorf("acknowledge %d stream entries: %w", len(ds), err)
	}
	return nil
}

// queueAck queues the acknowledgement of ds on p (see Settler), partition
// by partition. Only the entries delivered before (Deliveries other than
// 1) can have failure records to delete: a failure is counted in the
// attempts before its entry is handed out again, and a claimed entry's
// Deliveries is one more than that count. Sending 1,000 HDEL arguments per
// 500-entry batch for records that do not exist cost the worker and Redis
// both.
func (s *StreamConsumer) queueAck(ctx context.Context, p goredis.Pipeliner, ds []techlist.Delivery) {
	type acks struct{ ids, failed []string }
	byPart := make(map[int]*acks, 1)
	for _, d := range ds {
		if d.ID == "" {
			continue
		}
		a := byPart[d.Partition]
		if a == nil {
			a = &acks{ids: make([]string, 0, len(ds))}
			byPart[d.Partition] = a
		}
		a.ids = append(a.ids, d.ID)
		if d.Deliveries != 1 {
			a.failed = append(a.failed, d.ID)
		}
	}
	for i, a := range byPart {
		part, err := s.part(i)
		if err != nil {
			continue // not one of ours: nothing of it is held here
		}
		queueAckIDs(ctx, p, part, s.cfg.Group, a.ids, a.failed)
	}
}

// queueAckIDs lets go of part's ids and queues their XACK, their XDEL and
// the deletion of the failure records of those of them in failed.
//
// The ids are made arguments once for both commands: go-redis's own XAck
// and XDel box each id again.
func queueAckIDs(ctx context.Context, p goredis.Pipeliner, part *streamPart, group string, ids, failed []string) {
	part.release(ids...)
	command := func(ids []string, head ...any) []any {
		args := make([]any, len(head), len(head)+len(ids))
		copy(args, head)
		for _, id := range ids {
			args = append(args, id)
		}
		return args
	}
	xack := command(ids, "xack", part.stream, group)
	p.Do(ctx, xack...)
	p.Do(ctx, append([]any{"xdel", part.stream}, xack[3:]...)...)
	if len(failed) > 0 {
		p.Do(ctx, command(failed, "hdel", errorsKey(part.stream))...)
		p.Do(ctx, command(failed, "hdel", attemptsKey(part.stream))...)
	}
}

// Fail counts a failed attempt of an entry and records why. The entry
// stays pending and is delivered again after ClaimIdle; at MaxDeliveries
// failed attempts it goes to the dead-letter stream with this error.
func (s *StreamConsumer) Fail(ctx context.Context, d techlist.Delivery, reason error) error {
	if d.ID == "" {
		return nil
	}
	part, err := s.part(d.Partition)
	if err != nil {
		return fmt.Errorf("record failure of %s: %w", d.ID, err)
	}
	part.release(d.ID)
	var failed *goredis.IntCmd
	_, err = s.rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
		failed = p.HIncrBy(ctx, attemptsKey(part.stream), d.ID, 1)
		p.HSet(ctx, errorsKey(part.stream), d.ID, reason.Error())
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

// deadLetter moves d to its partition's dead-letter stream.
func (s *StreamConsumer) deadLetter(ctx context.Context, d techlist.Delivery, reason error, attempts int64) error {
	part, err := s.part(d.Partition)
	if err != nil {
		return fmt.Errorf("dead-letter %s: %w", d.ID, err)
	}
	err = s.rdb.XAdd(ctx, &goredis.XAddArgs{
		Stream: DeadStream(part.stream),
		Values: []any{payloadField, string(d.Payload), "entry", d.ID, "error", reason.Error(),
			"attempts", attempts, "consumer", s.cfg.Consumer, "at", time.Now().UTC().Format(time.RFC3339Nano)},
	}).Err()
	if err != nil {
		return fmt.Errorf("dead-letter %s: %w", d.ID, err)
	}
	s.dead.Add(1)
	// Acknowledged with its failure records deleted, whatever its
	// Deliveries: Fail may have just counted its first failed attempt.
	_, err = s.rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
		queueAckIDs(ctx, p, part, s.cfg.Group, []string{d.ID}, []string{d.ID})
		return nil
	})
	if err != nil {
		return fmt.Errorf("acknowledge dead letter %s: %w", d.ID, err)
	}
	return nil
}

// Backlogs returns how many entries wait (unread or pending) in each
// stream the consumer reads, by partition index.
func (s *StreamConsumer) Backlogs(ctx context.Context) ([]int64, error) {
	return StreamLengths(ctx, s.rdb, s.Streams())
}
