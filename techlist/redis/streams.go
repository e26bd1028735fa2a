package redis

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/techlist/techlist"
)

// ErrQueueFull is returned by StreamPublisher.Publish when the stream
// already holds its maximum of unprocessed entries: the submission is
// refused rather than older work trimmed away.
var ErrQueueFull = errors.New("the queue is full")

// The stream's entries carry the envelope in one field.
const payloadField = "envelope"

// StreamPublisher appends envelopes to a Redis stream, read by the workers
// through a consumer group. Workers delete entries once they are stored,
// so the stream's length is the backlog; maxLen bounds it.
type StreamPublisher struct {
	rdb    goredis.UniversalClient
	stream string
	maxLen int64
}

// NewStreamPublisher returns a publisher to stream holding at most maxLen
// unprocessed entries.
func NewStreamPublisher(rdb goredis.UniversalClient, stream string, maxLen int64) *StreamPublisher {
	return &StreamPublisher{rdb: rdb, stream: stream, maxLen: maxLen}
}

// appendOnce adds the entry only while the stream is shorter than its
// bound, in one atomic step (MAXLEN trimming would instead drop the oldest
// entries, which may not have been processed), and only once per envelope
// id: a marker key, kept for a day, records the ids appended, so a publish
// retried after its reply was lost (was it appended or not?) appends
// nothing the second time. The marker shares the stream's cluster slot
// through its hash tag.
var appendOnce = goredis.NewScript(`
if redis.call('EXISTS', KEYS[2]) == 1 then return 'dup' end
if redis.call('XLEN', KEYS[1]) >= tonumber(ARGV[1]) then return false end
redis.call('SET', KEYS[2], '1', 'EX', 86400)
return redis.call('XADD', KEYS[1], '*', ARGV[2], ARGV[3])
`)

// Publish appends env to the stream, once: publishing the same envelope id
// again is a no-op that succeeds.
func (p *StreamPublisher) Publish(ctx context.Context, env techlist.Envelope) error {
	b, err := env.Encode()
	if err != nil {
		return err
	}
	marker := "{" + p.stream + "}:appended:" + env.ID
	err = appendOnce.Run(ctx, p.rdb, []string{p.stream, marker}, p.maxLen, payloadField, b).Err()
	if errors.Is(err, goredis.Nil) {
		return ErrQueueFull
	}
	if err != nil {
		return fmt.Errorf("append to stream %s: %w", p.stream, err)
	}
	return nil
}

// Backlog returns how many entries wait in the stream (unread or pending).
func (p *StreamPublisher) Backlog(ctx context.Context) (int64, error) {
	n, err := p.rdb.XLen(ctx, p.stream).Result()
	if err != nil {
		return 0, fmt.Errorf("length of stream %s: %w", p.stream, err)
	}
	return n, nil
}

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
	// and has not acknowledged for this long is taken over.
	ClaimIdle time.Duration
	// MaxDeliveries is how many times an entry is handed out before it goes
	// to the dead-letter stream.
	MaxDeliveries int64
}

// DeadStream names the dead-letter stream of stream.
func DeadStream(stream string) string { return stream + ":dead" }

func errorsKey(stream string) string { return stream + ":errors" }

// StreamConsumer reads a stream through a consumer group: at-least-once
// delivery. An entry is acknowledged (and deleted) only after its row is
// committed; entries left pending by a worker that died are claimed after
// ClaimIdle; an entry delivered MaxDeliveries times goes to the dead-letter
// stream with its last error.
type StreamConsumer struct {
	rdb       goredis.UniversalClient
	cfg       StreamConfig
	buf       []Delivery
	nextClaim time.Time
	dead      atomic.Int64

	mu       sync.Mutex
	inFlight map[string]struct{} // handed out, not yet acked, failed or rejected
}

// NewStreamConsumer joins the group, creating the stream and the group when
// they do not exist. A new group starts at the stream's beginning, so
// entries appended before any worker ran are delivered too.
func NewStreamConsumer(ctx context.Context, rdb goredis.UniversalClient, cfg StreamConfig) (*StreamConsumer, error) {
	err := rdb.XGroupCreateMkStream(ctx, cfg.Stream, cfg.Group, "0").Err()
	if err != nil && !strings.HasPrefix(err.Error(), "BUSYGROUP") {
		return nil, fmt.Errorf("create consumer group %s on %s: %w", cfg.Group, cfg.Stream, err)
	}
	return &StreamConsumer{rdb: rdb, cfg: cfg, inFlight: map[string]struct{}{}}, nil
}

// DeadLettered returns how many entries this consumer moved to the
// dead-letter stream.
func (s *StreamConsumer) DeadLettered() int64 { return s.dead.Load() }

// Receive returns the next entry: one claimed from a dead consumer, or a
// new one. It blocks until there is one or ctx ends.
func (s *StreamConsumer) Receive(ctx context.Context) (Delivery, error) {
	for {
		if len(s.buf) > 0 {
			d := s.buf[0]
			s.buf = s.buf[1:]
			s.track(d.ID, true)
			return d, nil
		}
		if err := ctx.Err(); err != nil {
			return Delivery{}, err
		}
		if now := time.Now(); !now.Before(s.nextClaim) {
			s.nextClaim = now.Add(max(s.cfg.ClaimIdle/2, 100*time.Millisecond))
			if err := s.claim(ctx); err != nil {
				return Delivery{}, err
			}
			if len(s.buf) > 0 {
				continue
			}
		}
		res, err := s.rdb.XReadGroup(ctx, &goredis.XReadGroupArgs{
			Group:    s.cfg.Group,
			Consumer: s.cfg.Consumer,
			Streams:  []string{s.cfg.Stream, ">"},
			Count:    int64(s.cfg.Read),
			Block:    s.cfg.Block,
		}).Result()
		if errors.Is(err, goredis.Nil) {
			continue // nothing new within Block
		}
		if err != nil {
			if ctx.Err() != nil {
				return Delivery{}, ctx.Err()
			}
			if strings.HasPrefix(err.Error(), "NOGROUP") {
				// The stream was deleted (FLUSHALL, say): join again.
				if _, err := NewStreamConsumer(ctx, s.rdb, s.cfg); err != nil {
					return Delivery{}, err
				}
			}
			return Delivery{}, fmt.Errorf("read stream %s: %w", s.cfg.Stream, err)
		}
		for _, st := range res {
			for _, m := range st.Messages {
				s.buf = append(s.buf, delivery(m, 1))
			}
		}
	}
}

func delivery(m goredis.XMessage, deliveries int64) Delivery {
	payload, _ := m.Values[payloadField].(string)
	return Delivery{Payload: []byte(payload), ID: m.ID, Deliveries: deliveries}
}

// track records whether the entry id is being worked on by this process.
func (s *StreamConsumer) track(id string, working bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if working {
		s.inFlight[id] = struct{}{}
	} else {
		delete(s.inFlight, id)
	}
}

func (s *StreamConsumer) working(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.inFlight[id]
	return ok
}

// claim takes over the entries left pending for ClaimIdle (by a consumer
// that died, or by this one after a failure), and moves those delivered
// MaxDeliveries times to the dead-letter stream. Entries this process is
// still working on are left alone.
func (s *StreamConsumer) claim(ctx context.Context) error {
	pending, err := s.rdb.XPendingExt(ctx, &goredis.XPendingExtArgs{
		Stream: s.cfg.Stream, Group: s.cfg.Group, Idle: s.cfg.ClaimIdle,
		Start: "-", End: "+", Count: int64(max(s.cfg.Read, 10)),
	}).Result()
	if err != nil {
		return fmt.Errorf("list pending entries of %s: %w", s.cfg.Stream, err)
	}
	var ids []string
	retries := map[string]int64{}
	for _, p := range pending {
		if p.Consumer == s.cfg.Consumer && s.working(p.ID) {
			continue
		}
		ids = append(ids, p.ID)
		retries[p.ID] = p.RetryCount
	}
	if len(ids) == 0 {
		return nil
	}
	msgs, err := s.rdb.XClaim(ctx, &goredis.XClaimArgs{
		Stream: s.cfg.Stream, Group: s.cfg.Group, Consumer: s.cfg.Consumer,
		MinIdle: s.cfg.ClaimIdle, Messages: ids,
	}).Result()
	if err != nil {
		return fmt.Errorf("claim pending entries of %s: %w", s.cfg.Stream, err)
	}
	for _, m := range msgs {
		d := delivery(m, retries[m.ID]+1)
		if d.Deliveries > s.cfg.MaxDeliveries {
			lastErr, _ := s.rdb.HGet(ctx, errorsKey(s.cfg.Stream), m.ID).Result()
			if lastErr == "" {
				lastErr = "not stored after " + strconv.FormatInt(retries[m.ID], 10) + " deliveries"
			}
			if err := s.Reject(ctx, d, errors.New(lastErr)); err != nil {
				return err
			}
			continue
		}
		s.buf = append(s.buf, d)
	}
	return nil
}

// Ack acknowledges entries whose rows are committed, and deletes them, in
// one round trip.
func (s *StreamConsumer) Ack(ctx context.Context, ds ...Delivery) error {
	ids := make([]string, 0, len(ds))
	for _, d := range ds {
		if d.ID != "" {
			ids = append(ids, d.ID)
			s.track(d.ID, false)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	_, err := s.rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
		p.XAck(ctx, s.cfg.Stream, s.cfg.Group, ids...)
		p.XDel(ctx, s.cfg.Stream, ids...)
		p.HDel(ctx, errorsKey(s.cfg.Stream), ids...)
		return nil
	})
	if err != nil {
		return fmt.Errorf("acknowledge %d entries of %s: %w", len(ids), s.cfg.Stream, err)
	}
	return nil
}

// Fail records why an entry was not stored; it stays pending and is
// delivered again after ClaimIdle, and its last error goes with it to the
// dead-letter stream if it never succeeds.
func (s *StreamConsumer) Fail(ctx context.Context, d Delivery, reason error) error {
	if d.ID == "" {
		return nil
	}
	s.track(d.ID, false)
	if err := s.rdb.HSet(ctx, errorsKey(s.cfg.Stream), d.ID, reason.Error()).Err(); err != nil {
		return fmt.Errorf("record failure of %s: %w", d.ID, err)
	}
	return nil
}

// Reject moves an entry to the dead-letter stream with reason, and
// acknowledges it: it will never be stored.
func (s *StreamConsumer) Reject(ctx context.Context, d Delivery, reason error) error {
	if d.ID == "" {
		return nil
	}
	err := s.rdb.XAdd(ctx, &goredis.XAddArgs{
		Stream: DeadStream(s.cfg.Stream),
		Values: []any{payloadField, string(d.Payload), "entry", d.ID, "error", reason.Error(),
			"deliveries", d.Deliveries, "consumer", s.cfg.Consumer, "at", time.Now().UTC().Format(time.RFC3339Nano)},
	}).Err()
	if err != nil {
		return fmt.Errorf("dead-letter %s: %w", d.ID, err)
	}
	s.dead.Add(1)
	return s.Ack(ctx, d)
}

// DeadLetter is one entry of a dead-letter stream.
type DeadLetter struct {
	ID         string `json:"id"`
	Entry      string `json:"entry"`
	Error      string `json:"error"`
	Deliveries string `json:"deliveries"`
	Consumer   string `json:"consumer"`
	At         string `json:"at"`
	Envelope   string `json:"envelope"`
}

// ListDeadLetters returns up to n dead letters of stream, oldest first.
func ListDeadLetters(ctx context.Context, rdb goredis.UniversalClient, stream string, n int64) ([]DeadLetter, error) {
	msgs, err := rdb.XRangeN(ctx, DeadStream(stream), "-", "+", n).Result()
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", DeadStream(stream), err)
	}
	out := make([]DeadLetter, len(msgs))
	for i, m := range msgs {
		str := func(k string) string { s, _ := m.Values[k].(string); return s }
		out[i] = DeadLetter{ID: m.ID, Entry: str("entry"), Error: str("error"), Deliveries: str("deliveries"),
			Consumer: str("consumer"), At: str("at"), Envelope: str(payloadField)}
	}
	return out, nil
}

// ReplayDeadLetters appends the envelope of every dead letter present when
// it starts to the stream again, deleting each from the dead-letter stream
// once appended, and returns how many were replayed. Letters that arrive
// meanwhile (a replayed envelope that fails again, say) are left for the
// next call, so a letter that can never succeed does not loop.
func ReplayDeadLetters(ctx context.Context, rdb goredis.UniversalClient, stream string) (int, error) {
	dead := DeadStream(stream)
	last, err := rdb.XRevRangeN(ctx, dead, "+", "-", 1).Result()
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", dead, err)
	}
	if len(last) == 0 {
		return 0, nil
	}
	n, start := 0, "-"
	for {
		msgs, err := rdb.XRangeN(ctx, dead, start, last[0].ID, 100).Result()
		if err != nil {
			return n, fmt.Errorf("read %s: %w", dead, err)
		}
		if len(msgs) == 0 {
			return n, nil
		}
		for _, m := range msgs {
			envelope, _ := m.Values[payloadField].(string)
			if err := rdb.XAdd(ctx, &goredis.XAddArgs{Stream: stream, Values: []any{payloadField, envelope}}).Err(); err != nil {
				return n, fmt.Errorf("replay %s: %w", m.ID, err)
			}
			if err := rdb.XDel(ctx, dead, m.ID).Err(); err != nil {
				return n, fmt.Errorf("remove replayed %s: %w", m.ID, err)
			}
			n++
		}
		start = "(" + msgs[len(msgs)-1].ID
	}
}
