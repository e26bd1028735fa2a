package redis_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/techlist/techlist"
	"github.com/techlist/techlist/redis"
	"github.com/techlist/techlist/testenv"
)

func streamConfig(stream, consumer string) redis.StreamConfig {
	return redis.StreamConfig{
		Stream: stream, Group: "workers", Consumer: consumer,
		Read: 10, Block: 100 * time.Millisecond, ClaimIdle: 200 * time.Millisecond, MaxDeliveries: 3,
	}
}

func envelope(t *testing.T, text string) techlist.Envelope {
	t.Helper()
	return techlist.NewEnvelope("01890a5d-ac96-774b-bcce-"+testenv.Suffix()+"00", text, time.Now())
}

func receive(t *testing.T, c *redis.StreamConsumer) redis.Delivery {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	d, err := c.Receive(ctx)
	if err != nil {
		t.Fatalf("Receive: %v", err)
	}
	return d
}

func streamName(names testenv.Names) string { return names.Prefix + ":stream" }

func TestStreamDeliversAndAckDeletes(t *testing.T) {
	t.Parallel()
	rdb, names := testenv.Redis(t)
	ctx := context.Background()
	stream := streamName(names)
	pub := redis.NewStreamPublisher(rdb, stream, 100)
	// Appended before any worker joined: still delivered.
	want := envelope(t, "Go")
	if err := pub.Publish(ctx, want); err != nil {
		t.Fatal(err)
	}
	c, err := redis.NewStreamConsumer(ctx, rdb, streamConfig(stream, "a"))
	if err != nil {
		t.Fatal(err)
	}
	d := receive(t, c)
	got, err := techlist.DecodeEnvelope(d.Payload)
	if err != nil || got.ID != want.ID || d.Deliveries != 1 || d.ID == "" {
		t.Fatalf("got %+v (%v) deliveries %d, want envelope %s delivered once", got, err, d.Deliveries, want.ID)
	}
	if n, _ := pub.Backlog(ctx); n != 1 {
		t.Errorf("backlog before ack: got %d, want 1", n)
	}
	if err := c.Ack(ctx, d); err != nil {
		t.Fatal(err)
	}
	if n, _ := pub.Backlog(ctx); n != 0 {
		t.Errorf("backlog after ack: got %d, want 0 (acknowledged entries are deleted)", n)
	}
	pending, err := rdb.XPending(ctx, stream, "workers").Result()
	if err != nil || pending.Count != 0 {
		t.Errorf("pending after ack: got %+v, %v; want none", pending, err)
	}
}

func TestStreamPublishRefusesWhenFull(t *testing.T) {
	t.Parallel()
	rdb, names := testenv.Redis(t)
	ctx := context.Background()
	pub := redis.NewStreamPublisher(rdb, streamName(names), 2)
	for i := range 2 {
		if err := pub.Publish(ctx, envelope(t, "Go")); err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
	}
	if err := pub.Publish(ctx, envelope(t, "Go")); !errors.Is(err, redis.ErrQueueFull) {
		t.Errorf("third publish to a stream of 2: got %v, want ErrQueueFull", err)
	}
	if n, _ := rdb.XLen(ctx, streamName(names)).Result(); n != 2 {
		t.Errorf("stream length: got %d, want 2 (nothing trimmed)", n)
	}
}

// A worker that took an entry and died leaves it pending; another claims
// it after the visibility timeout.
func TestStreamClaimsEntriesOfADeadConsumer(t *testing.T) {
	t.Parallel()
	rdb, names := testenv.Redis(t)
	ctx := context.Background()
	stream := streamName(names)
	dead, err := redis.NewStreamConsumer(ctx, rdb, streamConfig(stream, "dead"))
	if err != nil {
		t.Fatal(err)
	}
	live, err := redis.NewStreamConsumer(ctx, rdb, streamConfig(stream, "live"))
	if err != nil {
		t.Fatal(err)
	}
	want := envelope(t, "Go")
	if err := redis.NewStreamPublisher(rdb, stream, 100).Publish(ctx, want); err != nil {
		t.Fatal(err)
	}
	taken := receive(t, dead) // and never acknowledged
	d := receive(t, live)
	if d.ID != taken.ID || d.Deliveries != 2 {
		t.Fatalf("claimed: got entry %s delivered %d times, want %s delivered twice", d.ID, d.Deliveries, taken.ID)
	}
	if err := live.Ack(ctx, d); err != nil {
		t.Fatal(err)
	}
}

// An entry that is never stored goes to the dead-letter stream with its
// last error after MaxDeliveries; replay puts it back.
func TestStreamDeadLettersAndReplay(t *testing.T) {
	t.Parallel()
	rdb, names := testenv.Redis(t)
	ctx := context.Background()
	stream := streamName(names)
	want := envelope(t, "Go")
	if err := redis.NewStreamPublisher(rdb, stream, 100).Publish(ctx, want); err != nil {
		t.Fatal(err)
	}
	// Three consumers in turn take it and fail: deliveries 1, 2, 3.
	for i, name := range []string{"w1", "w2", "w3"} {
		c, err := redis.NewStreamConsumer(ctx, rdb, streamConfig(stream, name))
		if err != nil {
			t.Fatal(err)
		}
		d := receive(t, c)
		if d.Deliveries != int64(i+1) {
			t.Fatalf("%s: got deliveries %d, want %d", name, d.Deliveries, i+1)
		}
		if err := c.Fail(ctx, d, errors.New("mysql: connection refused")); err != nil {
			t.Fatal(err)
		}
	}
	// The fourth delivery would exceed MaxDeliveries: dead-lettered instead.
	last, err := redis.NewStreamConsumer(ctx, rdb, streamConfig(stream, "w4"))
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	var letters []redis.DeadLetter
	for len(letters) == 0 && time.Now().Before(deadline) {
		rctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		if d, err := last.Receive(rctx); err == nil {
			t.Fatalf("got entry %s delivered %d times, want it dead-lettered", d.ID, d.Deliveries)
		}
		cancel()
		letters, err = redis.ListDeadLetters(ctx, rdb, stream, 10)
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(letters) != 1 || letters[0].Error != "mysql: connection refused" || !strings.Contains(letters[0].Envelope, want.ID) {
		t.Fatalf("dead letters: got %+v, want one with the last error and the envelope", letters)
	}
	if last.DeadLettered() != 1 {
		t.Errorf("DeadLettered: got %d, want 1", last.DeadLettered())
	}
	if n, _ := rdb.XLen(ctx, stream).Result(); n != 0 {
		t.Errorf("stream length after dead-lettering: got %d, want 0", n)
	}

	n, err := redis.ReplayDeadLetters(ctx, rdb, stream)
	if err != nil || n != 1 {
		t.Fatalf("replay: got %d, %v; want 1", n, err)
	}
	d := receive(t, last)
	if got, err := techlist.DecodeEnvelope(d.Payload); err != nil || got.ID != want.ID || d.Deliveries != 1 {
		t.Errorf("after replay: got %+v (%v), want the envelope delivered afresh", got, err)
	}
	if left, _ := redis.ListDeadLetters(ctx, rdb, stream, 10); len(left) != 0 {
		t.Errorf("dead letters after replay: got %d, want 0", len(left))
	}
}

func TestStreamRejectDeadLettersAtOnce(t *testing.T) {
	t.Parallel()
	rdb, names := testenv.Redis(t)
	ctx := context.Background()
	stream := streamName(names)
	if err := rdb.XAdd(ctx, &goredis.XAddArgs{Stream: stream, Values: []any{"envelope", "not json"}}).Err(); err != nil {
		t.Fatal(err)
	}
	c, err := redis.NewStreamConsumer(ctx, rdb, streamConfig(stream, "a"))
	if err != nil {
		t.Fatal(err)
	}
	d := receive(t, c)
	if err := c.Reject(ctx, d, errors.New("malformed envelope")); err != nil {
		t.Fatal(err)
	}
	letters, err := redis.ListDeadLetters(ctx, rdb, stream, 10)
	if err != nil || len(letters) != 1 || letters[0].Envelope != "not json" || letters[0].Error != "malformed envelope" {
		t.Errorf("got %+v, %v; want the rejected entry with its reason", letters, err)
	}
}

// With a single worker, an entry whose work failed is handed out again by
// the same consumer after the visibility timeout; one still being worked
// on is not.
func TestStreamRedeliversOwnFailedEntries(t *testing.T) {
	t.Parallel()
	rdb, names := testenv.Redis(t)
	ctx := context.Background()
	stream := streamName(names)
	c, err := redis.NewStreamConsumer(ctx, rdb, streamConfig(stream, "only"))
	if err != nil {
		t.Fatal(err)
	}
	pub := redis.NewStreamPublisher(rdb, stream, 100)
	for range 2 {
		if err := pub.Publish(ctx, envelope(t, "Go")); err != nil {
			t.Fatal(err)
		}
	}
	failed, working := receive(t, c), receive(t, c)
	if err := c.Fail(ctx, failed, errors.New("mysql down")); err != nil {
		t.Fatal(err)
	}
	again := receive(t, c)
	if again.ID != failed.ID || again.Deliveries != 2 {
		t.Fatalf("got %s delivered %d times, want the failed %s again", again.ID, again.Deliveries, failed.ID)
	}
	rctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if d, err := c.Receive(rctx); err == nil {
		t.Errorf("got %s again while it is still being worked on (%s)", d.ID, working.ID)
	}
}

// Replay takes only the letters there when it starts: one that fails again
// at once is not replayed in a loop.
func TestReplayTakesASnapshot(t *testing.T) {
	t.Parallel()
	rdb, names := testenv.Redis(t)
	ctx := context.Background()
	stream := streamName(names)
	dead := redis.DeadStream(stream)
	for i := range 150 {
		if err := rdb.XAdd(ctx, &goredis.XAddArgs{Stream: dead, Values: []any{"envelope", fmt.Sprintf("letter %d", i)}}).Err(); err != nil {
			t.Fatal(err)
		}
	}
	n, err := redis.ReplayDeadLetters(ctx, rdb, stream)
	if err != nil || n != 150 {
		t.Fatalf("replay: got %d, %v; want 150", n, err)
	}
	if got := rdb.XLen(ctx, stream).Val(); got != 150 {
		t.Errorf("stream length: got %d, want 150", got)
	}
	if got := rdb.XLen(ctx, dead).Val(); got != 0 {
		t.Errorf("dead letters left: got %d, want 0", got)
	}
}

// A publish retried after its reply was lost appends nothing the second
// time.
func TestStreamPublishIsIdempotentByID(t *testing.T) {
	t.Parallel()
	rdb, names := testenv.Redis(t)
	ctx := context.Background()
	stream := streamName(names)
	t.Cleanup(func() { rdb.Del(context.Background(), "{"+stream+"}:appended:"+"01890a5d-ac96-774b-bcce-b302099a8057") })
	pub := redis.NewStreamPublisher(rdb, stream, 100)
	env := techlist.NewEnvelope("01890a5d-ac96-774b-bcce-b302099a8057", "Go", time.Now())
	for i := range 3 {
		if err := pub.Publish(ctx, env); err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
	}
	if n := rdb.XLen(ctx, stream).Val(); n != 1 {
		t.Errorf("stream length after publishing one envelope 3 times: got %d, want 1", n)
	}
}
