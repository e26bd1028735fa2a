package redis_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/techlist/techlist"
	"github.com/techlist/techlist/redis"
	"github.com/techlist/techlist/testenv"
)

// One partition is today's stream and key names; more are hash-tagged
// streams whose keys all share the partition's slot, and whose slots lie
// each in its own n-th of the slot range.
func TestPartitionStreamsNaming(t *testing.T) {
	if got := redis.PartitionStreams("channel1", 1); !slices.Equal(got, []string{"channel1"}) {
		t.Errorf("one partition: got %q, want [channel1]", got)
	}
	if got := redis.StreamKeys("channel1", "x"); !slices.Equal(got,
		[]string{"channel1:dead", "channel1:errors", "{channel1}:attempts", "{channel1}:appended:x"}) {
		t.Errorf("one partition's keys: got %q, want today's names", got)
	}
	for _, channel := range []string{"channel1", "test-abc", "odd{name}"} {
		for _, n := range []int{2, 3, 5, 16, redis.MaxPartitions} {
			streams := redis.PartitionStreams(channel, n)
			if len(streams) != n {
				t.Fatalf("%s over %d: got %d streams", channel, n, len(streams))
			}
			for p, s := range streams {
				slot := redis.KeySlot(s)
				if lo, hi := p*16384/n, (p+1)*16384/n; slot < lo || slot >= hi {
					t.Errorf("%s partition %d of %d: %s is in slot %d, want in [%d, %d)", channel, p, n, s, slot, lo, hi)
				}
				if !strings.HasPrefix(s, "{") || !strings.HasSuffix(s, "}") || strings.Count(s, "{") != 1 {
					t.Errorf("%s partition %d of %d: got %q, want one hash tag, the whole name", channel, p, n, s)
				}
				for _, k := range redis.StreamKeys(s, "01890a5d-ac96-774b-bcce-b302099a8057") {
					if redis.KeySlot(k) != slot {
						t.Errorf("key %s of partition %s: slot %d, want the partition's %d", k, s, redis.KeySlot(k), slot)
					}
				}
			}
			if again := redis.PartitionStreams(channel, n); !slices.Equal(again, streams) {
				t.Errorf("%s over %d: names differ between calls: %q, %q", channel, n, streams, again)
			}
		}
	}
	// Two channels never share a partition: braces are escaped, not
	// replaced by a character a channel may hold.
	for _, pair := range [][2]string{{"a}b", "a_b"}, {"{x}", "_x_"}, {"a{b", "a%7Bb"}} {
		for _, n := range []int{2, 3} {
			a, b := redis.PartitionStreams(pair[0], n), redis.PartitionStreams(pair[1], n)
			for _, s := range a {
				if slices.Contains(b, s) {
					t.Errorf("channels %q and %q over %d share the partition %s", pair[0], pair[1], n, s)
				}
			}
		}
	}
	if got, want := redis.PartitionStreams("channel1", 3), []string{"{channel1:p0.4}", "{channel1:p1.23}", "{channel1:p2.1}"}; !slices.Equal(got, want) {
		// The names are a contract between api-servers and workers of
		// different versions: they must not change.
		t.Errorf("channel1 over 3: got %q, want %q", got, want)
	}
}

// The slot computed here is Redis Cluster's (CRC16 XMODEM check value).
func TestKeySlot(t *testing.T) {
	for key, want := range map[string]int{"123456789": 0x31C3, "{user1000}.following": redis.KeySlot("user1000"),
		"foo{}{bar}": redis.KeySlot("foo{}{bar}"), "a{b}c": redis.KeySlot("b")} {
		if got := redis.KeySlot(key); got != want {
			t.Errorf("slot of %q: got %d, want %d", key, got, want)
		}
	}
}

// A burst of UUIDv7 ids (same time prefix) spreads over the partitions.
func TestPartitionOfSpreads(t *testing.T) {
	const n, ids = 3, 3000
	counts := make([]int, n)
	for i := range ids {
		counts[redis.PartitionOf(intakeID("b302099a8057", i), n)]++
	}
	for p, c := range counts {
		if c < ids/n*8/10 || c > ids/n*12/10 {
			t.Errorf("partition %d got %d of %d ids, want about %d: %v", p, c, ids, ids/n, counts)
		}
	}
	if got := redis.PartitionOf("anything", 1); got != 0 {
		t.Errorf("one partition: got %d, want 0", got)
	}
}

// partitionedIntake returns an Intake publishing to n partitions of channel.
func partitionedIntake(t *testing.T, rdb goredis.UniversalClient, names testenv.Names, n int, maxLen int64) (*redis.Intake, *redis.PartitionedPublisher) {
	t.Helper()
	pipe := redis.NewAutoPipeline(rdb, 64)
	t.Cleanup(func() { pipe.Close() })
	pub := redis.NewPartitionedPublisher(rdb, names.Channel, n, maxLen, time.Minute)
	pending := redis.NewPendingIndex(redis.NewCache(rdb, names.Prefix, time.Minute))
	return redis.NewIntake(pipe, pub, pending, time.Hour), pub
}

// With one partition the publisher writes today's stream and no registry.
func TestOnePartitionIsTodaysStream(t *testing.T) {
	t.Parallel()
	rdb, names := testenv.Redis(t)
	ctx := context.Background()
	in, pub := partitionedIntake(t, rdb, names, 1, 100)
	env := envelope(t, "Go")
	if err := in.Publish(ctx, env); err != nil {
		t.Fatal(err)
	}
	if n := rdb.XLen(ctx, names.Channel).Val(); n != 1 {
		t.Errorf("stream %s: got %d entries, want 1", names.Channel, n)
	}
	if rdb.Exists(ctx, "{"+names.Channel+"}:appended:"+env.ID).Val() != 1 {
		t.Errorf("no append marker under today's name")
	}
	if rdb.Exists(ctx, redis.PartitionsKey(names.Channel)).Val() != 0 {
		t.Errorf("one partition registered itself; want no registry key")
	}
	if n, err := pub.Backlog(ctx); err != nil || n != 1 {
		t.Errorf("backlog: got %d, %v; want 1", n, err)
	}
}

// With three partitions each id goes to its partition, the partitions are
// registered, the backlog sums them, and each partition's bound is its
// share of the whole.
func TestPartitionedPublish(t *testing.T) {
	t.Parallel()
	rdb, names := testenv.Redis(t)
	ctx := context.Background()
	in, pub := partitionedIntake(t, rdb, names, 3, 30)
	streams := pub.Streams()
	for i, err := range publishAll(ctx, in, "b302099a8057", 24) {
		if err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
	}
	total := int64(0)
	for p, s := range streams {
		msgs := rdb.XRange(ctx, s, "-", "+").Val()
		for _, m := range msgs {
			env, err := techlist.DecodeEnvelope([]byte(m.Values["envelope"].(string)))
			if err != nil || redis.PartitionOf(env.ID, 3) != p {
				t.Errorf("entry %v in partition %d: %v", env.ID, p, err)
			}
		}
		if len(msgs) == 0 {
			t.Errorf("partition %d (%s) got nothing of 24", p, s)
		}
		total += int64(len(msgs))
	}
	if total != 24 {
		t.Errorf("got %d entries over the partitions, want 24", total)
	}
	if got := rdb.SMembers(ctx, redis.PartitionsKey(names.Channel)).Val(); len(got) != 3 {
		t.Errorf("registered partitions: got %q, want the 3 streams", got)
	}
	if n, err := pub.Backlog(ctx); err != nil || n != 24 {
		t.Errorf("backlog: got %d, %v; want 24", n, err)
	}
	// A name in the registry that holds no stream (put there by hand)
	// leaves the backlog of the others readable.
	notStream := "{" + names.Channel + ":p9}"
	rdb.Set(ctx, notStream, "x", 0)
	rdb.SAdd(ctx, redis.PartitionsKey(names.Channel), notStream)
	if n, err := pub.Backlog(ctx); err != nil || n != 24 {
		t.Errorf("backlog with a string key registered: got %d, %v; want 24", n, err)
	}
	rdb.SRem(ctx, redis.PartitionsKey(names.Channel), notStream)
	rdb.Del(ctx, notStream)
	// Each holds at most 10 (30 over 3): publishing goes on until the
	// partition of some id is full.
	var full error
	for i := 24; i < 60 && full == nil; i++ {
		full = in.Publish(ctx, techlist.NewEnvelope(intakeID("b302099a8057", i), "x", time.Now()))
	}
	if !errors.Is(full, techlist.ErrQueueFull) {
		t.Fatalf("got %v, want ErrQueueFull once a partition holds its share", full)
	}
	for p, s := range streams {
		if n := rdb.XLen(ctx, s).Val(); n > 10 {
			t.Errorf("partition %d holds %d, want at most 10", p, n)
		}
	}
}

// appendTo adds n envelopes to stream directly.
func appendTo(t *testing.T, rdb goredis.UniversalClient, stream, tag string, n int) {
	t.Helper()
	pub := redis.NewStreamPublisher(rdb, stream, 1000, time.Minute)
	for i := range n {
		env := techlist.NewEnvelope(intakeID("b302099a8057", i), fmt.Sprintf("%s %d", tag, i), time.Now())
		if err := pub.Publish(context.Background(), env); err != nil {
			t.Fatal(err)
		}
	}
}

// A hot partition does not starve the others: the consumer hands out one
// entry from each partition that has some, in turn.
func TestPartitionsTakeTurns(t *testing.T) {
	t.Parallel()
	rdb, names := testenv.Redis(t)
	streams := redis.PartitionStreams(names.Channel, 3)
	appendTo(t, rdb, streams[0], "hot", 50)
	appendTo(t, rdb, streams[1], "cool", 3)
	appendTo(t, rdb, streams[2], "cold", 3)
	cfg := streamConfig(names.Channel, "c")
	cfg.Partitions = 3
	c := newConsumer(t, rdb, cfg)
	if got, want := c.Streams(), append([]string{names.Channel}, streams...); !slices.Equal(got, want) {
		t.Fatalf("streams read: got %q, want %q", got, want)
	}
	var got []string
	for range 9 {
		d := receive(t, c)
		got = append(got, c.Streams()[d.Partition])
		if err := c.Ack(context.Background(), d); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range streams {
		if n := slices.Index(got, s); n < 0 || n > 2 {
			t.Errorf("first of %s handed out as entry %d of %q, want among the first 3", s, n, got)
		}
		if c := count(got, s); c != 3 {
			t.Errorf("%s: %d of the first 9 entries, want 3 (one each turn): %q", s, c, got)
		}
	}
	for p, s := range streams {
		if n := rdb.XLen(context.Background(), s).Val(); n != []int64{47, 0, 0}[p] {
			t.Errorf("%s holds %d after the acks", s, n)
		}
	}
}

func count(xs []string, x string) int {
	n := 0
	for _, y := range xs {
		if y == x {
			n++
		}
	}
	return n
}

// Failures, dead letters and their replay stay in the entry's partition.
func TestPartitionDeadLetters(t *testing.T) {
	t.Parallel()
	rdb, names := testenv.Redis(t)
	ctx := context.Background()
	streams := redis.PartitionStreams(names.Channel, 3)
	appendTo(t, rdb, streams[2], "doomed", 1)
	cfg := streamConfig(names.Channel, "c")
	cfg.Partitions, cfg.MaxDeliveries = 3, 2
	c := newConsumer(t, rdb, cfg)
	for attempt := range 2 {
		d := receive(t, c)
		if c.Streams()[d.Partition] != streams[2] || d.Deliveries != int64(attempt+1) {
			t.Fatalf("attempt %d: got %+v from %s", attempt+1, d, c.Streams()[d.Partition])
		}
		if err := c.Fail(ctx, d, errors.New("boom")); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range append([]string{names.Channel}, streams...) {
		want := int64(0)
		if s == streams[2] {
			want = 1
		}
		if n := rdb.XLen(ctx, redis.DeadStream(s)).Val(); n != want {
			t.Errorf("%s: %d dead letters, want %d", redis.DeadStream(s), n, want)
		}
		if n := rdb.XLen(ctx, s).Val(); n != 0 {
			t.Errorf("%s holds %d entries after the dead-lettering, want 0", s, n)
		}
	}
	if n, err := redis.NewStreamPublisher(rdb, streams[2], 10, time.Minute).ReplayDeadLetters(ctx); err != nil || n != 1 {
		t.Fatalf("replay: got %d, %v", n, err)
	}
	if d := receive(t, c); c.Streams()[d.Partition] != streams[2] {
		t.Errorf("replayed letter came from %s, want %s", c.Streams()[d.Partition], streams[2])
	}
}

// A registry lost while the api-server runs (deleted, or Redis restarted
// without persistence) is written again by its publishes within
// RegisterEvery, so the workers find the partitions it writes to.
func TestPartitionsRegisteredAgain(t *testing.T) {
	t.Parallel()
	rdb, names := testenv.Redis(t)
	ctx := context.Background()
	in, pub := partitionedIntake(t, rdb, names, 3, 300)
	var mu sync.Mutex
	now := time.Now()
	redis.SetPublisherClock(pub, func() time.Time { mu.Lock(); defer mu.Unlock(); return now })
	registered := func() int { return len(rdb.SMembers(ctx, redis.PartitionsKey(names.Channel)).Val()) }
	publish := func(i int) {
		t.Helper()
		if err := in.Publish(ctx, techlist.NewEnvelope(intakeID("b302099a8057", i), "x", time.Now())); err != nil {
			t.Fatal(err)
		}
	}
	publish(0)
	if got := registered(); got != 3 {
		t.Fatalf("after the first publish: %d partitions registered, want 3", got)
	}
	rdb.Del(ctx, redis.PartitionsKey(names.Channel))
	publish(1)
	if got := registered(); got != 0 {
		t.Errorf("a publish within RegisterEvery of the last registration registered again (%d); want it to wait", got)
	}
	mu.Lock()
	now = now.Add(redis.RegisterEvery)
	mu.Unlock()
	publish(2)
	if got := registered(); got != 3 {
		t.Errorf("a publish RegisterEvery after the registry was lost: %d partitions registered, want 3", got)
	}
}

// A worker drains the partitions an api-server registered, whatever its
// own STREAM_PARTITIONS, also those registered after it started.
func TestConsumerFindsRegisteredPartitions(t *testing.T) {
	t.Parallel()
	rdb, names := testenv.Redis(t)
	ctx := context.Background()
	cfg := streamConfig(names.Channel, "c")
	cfg.Rescan = 50 * time.Millisecond
	c := newConsumer(t, rdb, cfg) // one partition: today's stream only
	if got := c.Streams(); !slices.Equal(got, []string{names.Channel}) {
		t.Fatalf("streams read: got %q", got)
	}
	in, pub := partitionedIntake(t, rdb, names, 3, 100)
	for i, err := range publishAll(ctx, in, "b302099a8057", 12) {
		if err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
	}
	seen := map[string]bool{}
	for range 12 {
		d := receive(t, c)
		env, err := techlist.DecodeEnvelope(d.Payload)
		if err != nil {
			t.Fatal(err)
		}
		seen[env.ID] = true
		if err := c.Ack(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	if len(seen) != 12 {
		t.Errorf("got %d distinct envelopes, want 12", len(seen))
	}
	if got, want := c.Streams(), append([]string{names.Channel}, pub.Streams()...); !slices.Equal(got, want) {
		t.Errorf("streams read: got %q, want %q", got, want)
	}
	if n, err := pub.Backlog(ctx); err != nil || n != 0 {
		t.Errorf("backlog after the acks: got %d, %v; want 0", n, err)
	}
}

// A partition that cannot be read (here a key of the wrong type where its
// stream was) does not keep the others' entries from the worker.
func TestBrokenPartitionDoesNotHoldUpTheOthers(t *testing.T) {
	t.Parallel()
	rdb, names := testenv.Redis(t)
	ctx := context.Background()
	streams := redis.PartitionStreams(names.Channel, 3)
	cfg := streamConfig(names.Channel, "c")
	cfg.Partitions = 3
	c := newConsumer(t, rdb, cfg)
	if err := rdb.Del(ctx, streams[1]).Err(); err != nil {
		t.Fatal(err)
	}
	if err := rdb.Set(ctx, streams[1], "not a stream", 0).Err(); err != nil {
		t.Fatal(err)
	}
	appendTo(t, rdb, streams[2], "fine", 1)
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	d, err := c.Receive(ctx)
	if err != nil || c.Streams()[d.Partition] != streams[2] {
		t.Fatalf("got %+v, %v; want the entry of %s", d, err, streams[2])
	}
}
