package redis

import (
	"context"
	"errors"
	"fmt"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/techlist/techlist"
)

// The stream's entries carry the envelope in one field.
const payloadField = "envelope"

// slotKey names a key of stream's in the same Redis Cluster slot as the
// stream, so one script may touch both: it carries the stream's own hash
// tag, or, when the name has none, the whole name as its tag.
func slotKey(stream, suffix string) string {
	if hasHashTag(stream) {
		return stream + suffix
	}
	return "{" + stream + "}" + suffix
}

// markerKey records that the envelope id was appended to stream.
func markerKey(stream, id string) string { return slotKey(stream, ":appended:"+id) }

// MarkerTTL is how long an append-once marker lives when the api-server
// retries a publish of unknown outcome for publishRetry: the retries of one
// id end within publishRetry (plus one Redis timeout), and twice that with
// a floor of a minute leaves a wide margin. A later republish of the id
// (a client retrying with its Idempotency-Key) appends a second entry,
// which is harmless: the id is the row's primary key.
func MarkerTTL(publishRetry time.Duration) time.Duration {
	return max(2*publishRetry+10*time.Second, time.Minute)
}

// StreamPublisher appends envelopes to a Redis stream, read by the workers
// through a consumer group. Workers delete entries once they are stored,
// so the stream's length is the backlog; maxLen bounds it.
type StreamPublisher struct {
	rdb       goredis.UniversalClient
	stream    string
	maxLen    int64
	markerTTL time.Duration
}

// NewStreamPublisher returns a publisher to stream holding at most maxLen
// unprocessed entries, whose append-once markers live markerTTL (see
// MarkerTTL).
func NewStreamPublisher(rdb goredis.UniversalClient, stream string, maxLen int64, markerTTL time.Duration) *StreamPublisher {
	return &StreamPublisher{rdb: rdb, stream: stream, maxLen: maxLen, markerTTL: max(markerTTL, time.Second)}
}

// appendOnce adds the entry only while the stream is shorter than its
// bound, in one atomic step (MAXLEN trimming would instead drop the oldest
// entries, which may not have been processed), and only once per envelope
// id: a marker key, kept for the marker TTL, records the ids appended, so
// a publish retried after its reply was lost (was it appended or not?)
// appends nothing the second time. The marker holds a token: a publish
// (token "") is a duplicate whenever a marker exists; a replayed dead
// letter (token: the letter's id) only when that same letter set it, so a
// letter is appended even while its first publish's marker lives. The
// marker shares the stream's cluster slot.
//
// KEYS: stream, marker. ARGV: max length, field, payload, TTL in ms, token.
var appendOnce = goredis.NewScript(`
local marker = redis.call('GET', KEYS[2])
if marker and (ARGV[5] == '' or marker == ARGV[5]) then return 'dup' end
if redis.call('XLEN', KEYS[1]) >= tonumber(ARGV[1]) then return false end
local token = ARGV[5]
if token == '' then token = '1' end
redis.call('SET', KEYS[2], token, 'PX', ARGV[4])
return redis.call('XADD', KEYS[1], '*', ARGV[2], ARGV[3])
`)

// Publish appends env to the stream, once: publishing the same envelope id
// again is a no-op that succeeds.
func (p *StreamPublisher) Publish(ctx context.Context, env techlist.Envelope) error {
	b, err := env.Encode()
	if err != nil {
		return err
	}
	return p.append(ctx, env.ID, "", b)
}

// append runs appendOnce; techlist.ErrQueueFull when the stream is at its
// bound.
func (p *StreamPublisher) append(ctx context.Context, id, token string, payload []byte) error {
	cmd := p.appendCmd(ctx, id, token, payload)
	processScript(ctx, p.rdb, cmd)
	return p.appended(cmd)
}

// publishCmd is Publish's call of appendOnce for payload, to send in a
// pipeline (see Intake); appended reads its outcome.
func (p *StreamPublisher) publishCmd(ctx context.Context, id string, payload []byte) *goredis.Cmd {
	return p.appendCmd(ctx, id, "", payload)
}

func (p *StreamPublisher) appendCmd(ctx context.Context, id, token string, payload []byte) *goredis.Cmd {
	return evalSha(ctx, appendOnce, []string{p.stream, markerKey(p.stream, id)},
		p.maxLen, payloadField, payload, p.markerTTL.Milliseconds(), token)
}

// appended returns techlist.ErrQueueFull when the script found the stream
// at its bound, and nil when it appended the entry or found it appended.
func (p *StreamPublisher) appended(cmd *goredis.Cmd) error { return appendOutcome(p.stream, cmd) }

func appendOutcome(stream string, cmd *goredis.Cmd) error {
	err := cmd.Err()
	if errors.Is(err, goredis.Nil) {
		return techlist.ErrQueueFull
	}
	if err != nil {
		return fmt.Errorf("append to stream %s: %w", stream, err)
	}
	return nil
}

func (p *StreamPublisher) published(cmd *goredis.Cmd) error { return p.appended(cmd) }

// Backlog returns how many entries wait in the stream (unread or pending).
func (p *StreamPublisher) Backlog(ctx context.Context) (int64, error) {
	n, err := p.rdb.XLen(ctx, p.stream).Result()
	if err != nil {
		return 0, fmt.Errorf("length of stream %s: %w", p.stream, err)
	}
	return n, nil
}
