package redis

import (
	"context"
	"fmt"

	goredis "github.com/redis/go-redis/v9"
	"github.com/techlist/techlist"
)

// DeadStream names the dead-letter stream of stream.
func DeadStream(stream string) string { return stream + ":dead" }

// DeadLetter is one entry of a dead-letter stream.
type DeadLetter struct {
	ID       string `json:"id"`
	Entry    string `json:"entry"`
	Error    string `json:"error"`
	Attempts string `json:"attempts"`
	Consumer string `json:"consumer"`
	At       string `json:"at"`
	Envelope string `json:"envelope"`
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
		attempts := str("attempts")
		if attempts == "" {
			attempts = str("deliveries") // a letter written before attempts were counted
		}
		out[i] = DeadLetter{ID: m.ID, Entry: str("entry"), Error: str("error"), Attempts: attempts,
			Consumer: str("consumer"), At: str("at"), Envelope: str(payloadField)}
	}
	return out, nil
}

// ReplayDeadLetters appends the envelope of every dead letter present when
// it starts to the stream again, through the same bounded, append-once
// step as Publish, deleting each from the dead-letter stream once
// appended, and returns how many were replayed. When the stream reaches
// its bound it stops with techlist.ErrQueueFull, leaving the rest dead.
// Letters that arrive meanwhile (a replayed envelope that fails again, say)
// are left for the next call, so a letter that can never succeed does not
// loop.
func (p *StreamPublisher) ReplayDeadLetters(ctx context.Context) (int, error) {
	dead := DeadStream(p.stream)
	last, err := p.rdb.XRevRangeN(ctx, dead, "+", "-", 1).Result()
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", dead, err)
	}
	if len(last) == 0 {
		return 0, nil
	}
	n, start := 0, "-"
	for {
		msgs, err := p.rdb.XRangeN(ctx, dead, start, last[0].ID, 100).Result()
		if err != nil {
			return n, fmt.Errorf("read %s: %w", dead, err)
		}
		if len(msgs) == 0 {
			return n, nil
		}
		for _, m := range msgs {
			if err := p.replay(ctx, m); err != nil {
				return n, err
			}
			n++
		}
		start = "(" + msgs[len(msgs)-1].ID
	}
}

// replay appends one dead letter and deletes it. Its marker is the
// envelope id's, as a publish's, with the letter's id as token: a replay
// retried after it appended the letter but failed to delete it appends
// nothing twice, and a publish of the id retried meanwhile neither. A
// letter that is not a valid envelope has no id; its own id stands in.
func (p *StreamPublisher) replay(ctx context.Context, m goredis.XMessage) error {
	payload, _ := m.Values[payloadField].(string)
	id := "dead-letter-" + m.ID
	if env, err := techlist.DecodeEnvelope([]byte(payload)); err == nil {
		id = env.ID
	}
	if err := p.append(ctx, id, "replay:"+m.ID, []byte(payload)); err != nil {
		return fmt.Errorf("replay %s: %w", m.ID, err)
	}
	if err := p.rdb.XDel(ctx, DeadStream(p.stream), m.ID).Err(); err != nil {
		return fmt.Errorf("remove replayed %s: %w", m.ID, err)
	}
	return nil
}
