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

// newConsumer joins the group; the consumer is closed when the test ends.
func newConsumer(t *testing.T, rdb goredis.UniversalClient, cfg redis.StreamConfig) *redis.StreamConsumer {
	t.Helper()
	c, err := redis.NewStreamConsumer(context.Background(), rdb, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func envelope(t *testing.T, text string) techlist.Envelope {
	t.Helper()
	return techlist.NewEnvelope("01890a5d-ac96-774b-bcce-"+testenv.Suffix()+"00", text, time.Now())
}

func receive(t *testing.T, c *redis.StreamConsumer) techlist.Delivery {
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
	pub := redis.NewStreamPublisher(rdb, stream, 100, time.Minute)
	// Appended before any worker joined: still delivered.
	want := envelope(t, "Go")
	if err := pub.Publish(ctx, want); err != nil {
		t.Fatal(err)
	}
	c := newConsumer(t, rdb, streamConfig(stream, "a"))
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
	pub := redis.NewStreamPublisher(rdb, streamName(names), 2, time.Minute)
	for i := range 2 {
		if err := pub.Publish(ctx, envelope(t, "Go")); err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
	}
	if err := pub.Publish(ctx, envelope(t, "Go")); !errors.Is(err, techlist.ErrQueueFull) {
		t.Errorf("third publish to a stream of 2: got %v, want ErrQueueFull", err)
	}
	if n, _ := rdb.XLen(ctx, streamName(names)).Result(); n != 2 {
		t.Errorf("stream length: got %d, want 2 (nothing trimmed)", n)
	}
}

// A worker that took an entry and died leaves it pending; another claims
// it after the visibility timeout, as a first attempt: the claim is not a
// failed attempt.
func TestStreamClaimsEntriesOfADeadConsumer(t *testing.T) {
	t.Parallel()
	rdb, names := testenv.Redis(t)
	ctx := context.Background()
	stream := streamName(names)
	dead := newConsumer(t, rdb, streamConfig(stream, "dead"))
	live := newConsumer(t, rdb, streamConfig(stream, "live"))
	want := envelope(t, "Go")
	if err := redis.NewStreamPublisher(rdb, stream, 100, time.Minute).Publish(ctx, want); err != nil {
		t.Fatal(err)
	}
	taken := receive(t, dead) // and never acknowledged
	dead.Close()              // the process is gone: nothing keeps the entry
	d := receive(t, live)
	if d.ID != taken.ID || d.Deliveries != 1 {
		t.Fatalf("claimed: got entry %s attempt %d, want %s attempt 1", d.ID, d.Deliveries, taken.ID)
	}
	if err := live.Ack(ctx, d); err != nil {
		t.Fatal(err)
	}
}

// An entry that is never stored goes to the dead-letter stream with its
// last error after MaxDeliveries failed attempts; replay puts it back.
func TestStreamDeadLettersAndReplay(t *testing.T) {
	t.Parallel()
	rdb, names := testenv.Redis(t)
	ctx := context.Background()
	stream := streamName(names)
	want := envelope(t, "Go")
	pub := redis.NewStreamPublisher(rdb, stream, 100, time.Minute)
	if err := pub.Publish(ctx, want); err != nil {
		t.Fatal(err)
	}
	// Three consumers in turn take it and fail: attempts 1, 2, 3; the
	// third failure reaches MaxDeliveries and dead-letters it.
	var last *redis.StreamConsumer
	for i, name := range []string{"w1", "w2", "w3"} {
		last = newConsumer(t, rdb, streamConfig(stream, name))
		d := receive(t, last)
		if d.Deliveries != int64(i+1) {
			t.Fatalf("%s: got attempt %d, want %d", name, d.Deliveries, i+1)
		}
		if err := last.Fail(ctx, d, errors.New("mysql: connection refused")); err != nil {
			t.Fatal(err)
		}
	}
	letters, err := redis.ListDeadLetters(ctx, rdb, stream, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(letters) != 1 || letters[0].Error != "mysql: connection refused" || letters[0].Attempts != "3" ||
		!strings.Contains(letters[0].Envelope, want.ID) {
		t.Fatalf("dead letters: got %+v, want one with the last error, 3 attempts and the envelope", letters)
	}
	if last.DeadLettered() != 1 {
		t.Errorf("DeadLettered: got %d, want 1", last.DeadLettered())
	}
	if n, _ := rdb.XLen(ctx, stream).Result(); n != 0 {
		t.Errorf("stream length after dead-lettering: got %d, want 0", n)
	}
	rctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if d, err := last.Receive(rctx); err == nil {
		t.Fatalf("got entry %s (attempt %d) after it was dead-lettered", d.ID, d.Deliveries)
	}

	n, err := pub.ReplayDeadLetters(ctx)
	if err != nil || n != 1 {
		t.Fatalf("replay: got %d, %v; want 1", n, err)
	}
	d := receive(t, last)
	if got, err := techlist.DecodeEnvelope(d.Payload); err != nil || got.ID != want.ID || d.Deliveries != 1 {
		t.Errorf("after replay: got %+v (%v) attempt %d, want the envelope delivered afresh", got, err, d.Deliveries)
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
	c := newConsumer(t, rdb, streamConfig(stream, "a"))
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
	c := newConsumer(t, rdb, streamConfig(stream, "only"))
	pub := redis.NewStreamPublisher(rdb, stream, 100, time.Minute)
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
	n, err := redis.NewStreamPublisher(rdb, stream, 1000, time.Minute).ReplayDeadLetters(ctx)
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
	pub := redis.NewStreamPublisher(rdb, stream, 100, time.Minute)
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

// A worker that keeps an entry in flight (its MySQL is down, say) longer
// than ClaimIdle is alive and retrying: no other worker claims the entry,
// and only failed attempts count towards the dead letters.
func TestStreamLiveWorkersEntryIsNotClaimed(t *testing.T) {
	t.Parallel()
	rdb, names := testenv.Redis(t)
	ctx := context.Background()
	stream := streamName(names)
	cfg := func(name string) redis.StreamConfig {
		c := streamConfig(stream, name)
		c.ClaimIdle = 300 * time.Millisecond
		return c
	}
	a := newConsumer(t, rdb, cfg("a"))
	b := newConsumer(t, rdb, cfg("b"))
	if err := redis.NewStreamPublisher(rdb, stream, 100, time.Minute).Publish(ctx, envelope(t, "Go")); err != nil {
		t.Fatal(err)
	}
	held := receive(t, a)
	// Four visibility timeouts while a holds it: b gets nothing.
	rctx, cancel := context.WithTimeout(ctx, 4*300*time.Millisecond)
	defer cancel()
	if d, err := b.Receive(rctx); err == nil {
		t.Fatalf("b claimed entry %s (delivery %d) that a still holds, want nothing", d.ID, d.Deliveries)
	}
	// a's attempts fail, each counted once: the entry is dead-lettered
	// after the third (MaxDeliveries), not before.
	d := held
	for attempt := int64(1); attempt <= 3; attempt++ {
		if d.ID != held.ID || d.Deliveries != attempt {
			t.Fatalf("attempt %d: got entry %s delivery %d, want %s delivery %d", attempt, d.ID, d.Deliveries, held.ID, attempt)
		}
		if letters, _ := redis.ListDeadLetters(ctx, rdb, stream, 10); len(letters) != 0 {
			t.Fatalf("after %d failed attempts: got %d dead letters, want 0", attempt-1, len(letters))
		}
		if err := a.Fail(ctx, d, errors.New("mysql: connection refused")); err != nil {
			t.Fatal(err)
		}
		if attempt < 3 {
			d = receive(t, a)
		}
	}
	testenv.Eventually(t, "the entry in the dead letters after 3 failed attempts", func() bool {
		rctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		defer cancel()
		if d, err := a.Receive(rctx); err == nil {
			t.Fatalf("got entry %s again (delivery %d) after 3 failed attempts, want it dead-lettered", d.ID, d.Deliveries)
		}
		letters, _ := redis.ListDeadLetters(ctx, rdb, stream, 10)
		return len(letters) == 1
	})
}

// Entries a worker read but never handed to a task, and entries claimed
// from a worker that died, are delivered as first attempts: a restart
// alone counts nothing.
func TestStreamRestartCountsNoAttempts(t *testing.T) {
	t.Parallel()
	rdb, names := testenv.Redis(t)
	ctx := context.Background()
	stream := streamName(names)
	pub := redis.NewStreamPublisher(rdb, stream, 100, time.Minute)
	for range 3 {
		if err := pub.Publish(ctx, envelope(t, "Go")); err != nil {
			t.Fatal(err)
		}
	}
	// Each worker takes the three entries (it reads them all), hands out
	// one, and dies.
	for _, name := range []string{"first", "second", "third"} {
		c := newConsumer(t, rdb, streamConfig(stream, name))
		if d := receive(t, c); d.Deliveries != 1 {
			t.Fatalf("%s: got delivery %d of %s, want 1 (no attempt failed)", name, d.Deliveries, d.ID)
		}
		c.Close()
	}
	last := newConsumer(t, rdb, streamConfig(stream, "last"))
	for range 3 {
		d := receive(t, last)
		if d.Deliveries != 1 {
			t.Errorf("after three restarts: got delivery %d of %s, want 1 (no attempt failed)", d.Deliveries, d.ID)
		}
		if err := last.Ack(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	if letters, _ := redis.ListDeadLetters(ctx, rdb, stream, 10); len(letters) != 0 {
		t.Errorf("got %d dead letters, want 0", len(letters))
	}
}

func deadLetterOf(t *testing.T, rdb goredis.UniversalClient, stream, payload string) {
	t.Helper()
	err := rdb.XAdd(context.Background(), &goredis.XAddArgs{Stream: redis.DeadStream(stream),
		Values: []any{"envelope", payload, "entry", "0-1", "error", "test", "attempts", 5}}).Err()
	if err != nil {
		t.Fatal(err)
	}
}

// Replay keeps the API's bound: with the stream at its maximum it appends
// nothing, says so, and the letters stay dead.
func TestReplayStopsAtStreamMaxLen(t *testing.T) {
	t.Parallel()
	rdb, names := testenv.Redis(t)
	ctx := context.Background()
	stream := streamName(names)
	pub := redis.NewStreamPublisher(rdb, stream, 2, time.Minute)
	for range 2 {
		if err := pub.Publish(ctx, envelope(t, "Go")); err != nil {
			t.Fatal(err)
		}
	}
	for range 2 {
		b, _ := envelope(t, "Rust").Encode()
		deadLetterOf(t, rdb, stream, string(b))
	}
	n, err := pub.ReplayDeadLetters(ctx)
	if n != 0 || !errors.Is(err, techlist.ErrQueueFull) {
		t.Errorf("replay into a full stream: got %d, %v; want 0, ErrQueueFull", n, err)
	}
	if got := rdb.XLen(ctx, stream).Val(); got != 2 {
		t.Errorf("stream length: got %d, want 2 (its bound)", got)
	}
	if got := rdb.XLen(ctx, redis.DeadStream(stream)).Val(); got != 2 {
		t.Errorf("dead letters: got %d, want both left", got)
	}
}

// Replay goes through the append-once marker: a letter is appended even
// while the marker of its first publish lives, and it sets the marker, so
// a publish of the same id retried after the replay appends nothing.
func TestReplayRespectsTheAppendOnceMarker(t *testing.T) {
	t.Parallel()
	rdb, names := testenv.Redis(t)
	ctx := context.Background()
	stream := streamName(names)
	pub := redis.NewStreamPublisher(rdb, stream, 100, time.Minute)

	// Dead-lettered while its publish's marker still lives.
	early := envelope(t, "Go")
	if err := pub.Publish(ctx, early); err != nil {
		t.Fatal(err)
	}
	rdb.Del(ctx, stream)
	b, _ := early.Encode()
	deadLetterOf(t, rdb, stream, string(b))
	// Dead-lettered long ago: its marker has expired.
	late := envelope(t, "Rust")
	b, _ = late.Encode()
	deadLetterOf(t, rdb, stream, string(b))

	if n, err := pub.ReplayDeadLetters(ctx); n != 2 || err != nil {
		t.Fatalf("replay: got %d, %v; want 2", n, err)
	}
	if got := rdb.XLen(ctx, stream).Val(); got != 2 {
		t.Fatalf("stream length after replay: got %d, want 2", got)
	}
	// The api-server retrying either publish now appends nothing.
	for _, env := range []techlist.Envelope{early, late} {
		if err := pub.Publish(ctx, env); err != nil {
			t.Fatal(err)
		}
	}
	if got := rdb.XLen(ctx, stream).Val(); got != 2 {
		t.Errorf("stream length after republishing the replayed ids: got %d, want 2", got)
	}
}

// The append-once marker lives as long as the api-server's publish retries
// need, not a day.
func TestStreamMarkerLivesMarkerTTL(t *testing.T) {
	t.Parallel()
	rdb, names := testenv.Redis(t)
	ctx := context.Background()
	stream := streamName(names)
	for _, tc := range []struct{ retry, want time.Duration }{
		{5 * time.Second, time.Minute}, {40 * time.Second, 90 * time.Second},
	} {
		if got := redis.MarkerTTL(tc.retry); got != tc.want {
			t.Errorf("MarkerTTL(%s): got %s, want %s", tc.retry, got, tc.want)
		}
	}
	env := envelope(t, "Go")
	if err := redis.NewStreamPublisher(rdb, stream, 100, redis.MarkerTTL(5*time.Second)).Publish(ctx, env); err != nil {
		t.Fatal(err)
	}
	ttl := rdb.PTTL(ctx, "{"+stream+"}:appended:"+env.ID).Val()
	if ttl <= 0 || ttl > time.Minute {
		t.Errorf("marker TTL: got %s, want at most MarkerTTL(5s) = 1m", ttl)
	}
}

// TestStreamReceiveBufferedHandsOutTheRestOfARead: after a Receive, the
// entries of the same read are handed out by ReceiveBuffered, in order,
// without another read, and are held and acknowledged as any other.
func TestStreamReceiveBufferedHandsOutTheRestOfARead(t *testing.T) {
	t.Parallel()
	rdb, names := testenv.Redis(t)
	ctx := context.Background()
	stream := streamName(names)
	pub := redis.NewStreamPublisher(rdb, stream, 100, time.Minute)
	var want []string
	for i := range 5 {
		env := envelope(t, fmt.Sprintf("tech %d", i))
		env.ID = fmt.Sprintf("01890a5d-ac96-774b-bcce-%s%02d", testenv.Suffix(), i)
		if err := pub.Publish(ctx, env); err != nil {
			t.Fatal(err)
		}
		want = append(want, env.ID)
	}
	c := newConsumer(t, rdb, streamConfig(stream, "a")) // Read: 10
	ds := []techlist.Delivery{receive(t, c)}
	if got := c.Buffered(); got != 4 {
		t.Fatalf("Buffered after the first Receive: got %d, want 4", got)
	}
	ds = c.ReceiveBuffered(ds, 3)
	ds = c.ReceiveBuffered(ds, 3)
	if len(ds) != 5 || c.Buffered() != 0 {
		t.Fatalf("got %d deliveries, %d still buffered, want all 5 handed out", len(ds), c.Buffered())
	}
	for i, d := range ds {
		env, err := techlist.DecodeEnvelope(d.Payload)
		if err != nil || env.ID != want[i] || d.Deliveries != 1 {
			t.Errorf("delivery %d: got %+v (%v), want %s delivered once, in order", i, env, err, want[i])
		}
	}
	if err := c.Ack(ctx, ds...); err != nil {
		t.Fatal(err)
	}
	if n, _ := pub.Backlog(ctx); n != 0 {
		t.Errorf("backlog after ack: got %d, want 0", n)
	}
}

// TestStreamAckDeletesTheFailureRecords: an entry that failed, handed out
// again and then acknowledged (alone, or in a batch of first deliveries)
// leaves no failure record behind; one dead-lettered at its first failure
// neither.
func TestStreamAckDeletesTheFailureRecords(t *testing.T) {
	t.Parallel()
	rdb, names := testenv.Redis(t)
	ctx := context.Background()
	stream := streamName(names)
	cfg := streamConfig(stream, "only")
	c := newConsumer(t, rdb, cfg)
	pub := redis.NewStreamPublisher(rdb, stream, 100, time.Minute)
	for range 2 {
		if err := pub.Publish(ctx, envelope(t, "Go")); err != nil {
			t.Fatal(err)
		}
	}
	failed, first := receive(t, c), receive(t, c)
	if err := c.Fail(ctx, failed, errors.New("mysql down")); err != nil {
		t.Fatal(err)
	}
	again := receive(t, c)
	if again.ID != failed.ID || again.Deliveries != 2 {
		t.Fatalf("got %s delivered %d times, want the failed %s again", again.ID, again.Deliveries, failed.ID)
	}
	if err := c.Ack(ctx, first, again); err != nil {
		t.Fatal(err)
	}
	keys := redis.StreamKeys(stream, "")
	for _, key := range keys[1:3] {
		if n, err := rdb.HLen(ctx, key).Result(); err != nil || n != 0 {
			t.Errorf("%s after the ack: %d fields, %v; want none", key, n, err)
		}
	}

	cfg.Consumer, cfg.MaxDeliveries = "once", 1
	once := newConsumer(t, rdb, cfg)
	if err := pub.Publish(ctx, envelope(t, "Rust")); err != nil {
		t.Fatal(err)
	}
	d := receive(t, once)
	if err := once.Fail(ctx, d, errors.New("mysql down")); err != nil {
		t.Fatal(err)
	}
	if once.DeadLettered() != 1 {
		t.Fatalf("dead-lettered %d, want the entry that failed its only attempt", once.DeadLettered())
	}
	for _, key := range keys[1:3] {
		if n, err := rdb.HLen(ctx, key).Result(); err != nil || n != 0 {
			t.Errorf("%s after the dead letter: %d fields, %v; want none", key, n, err)
		}
	}
}
