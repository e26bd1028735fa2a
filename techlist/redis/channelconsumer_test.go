package redis_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/techlist/techlist"
	"github.com/techlist/techlist/redis"
	"github.com/techlist/techlist/testenv"
)

func newChannelConsumer(t *testing.T, rdb goredis.UniversalClient, channel string, buffer int) *redis.ChannelConsumer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := redis.NewChannelConsumer(ctx, rdb, redis.ChannelConfig{Channel: channel, Worker: "worker-" + testenv.Suffix(),
		Buffer: buffer, Lease: 600 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// publishN publishes envelopes numbered from first until n were accepted
// or one is refused; it returns the ids accepted and whether one was
// refused.
func publishN(t *testing.T, pub *redis.Publisher, first, n int) (accepted []string, refused bool) {
	t.Helper()
	for i := first; len(accepted) < n; i++ {
		id := fmt.Sprintf("01890a5d-ac96-774b-bcce-%012d", i)
		err := pub.Publish(context.Background(), techlist.NewEnvelope(id, "Go", time.Now()))
		if errors.Is(err, techlist.ErrNoSubscribers) {
			return accepted, true
		}
		if err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
		accepted = append(accepted, id)
	}
	return accepted, false
}

// take takes n messages and returns them, unsettled.
func take(t *testing.T, c *redis.ChannelConsumer, n int) []techlist.Delivery {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var ds []techlist.Delivery
	for range n {
		d, err := c.Receive(ctx)
		if err != nil {
			t.Fatalf("received %d of %d: %v", len(ds), n, err)
		}
		ds = append(ds, d)
	}
	return ds
}

// envelopeIDs returns the ids of the envelopes in ds.
func envelopeIDs(t *testing.T, ds []techlist.Delivery) map[string]bool {
	t.Helper()
	got := map[string]bool{}
	for _, d := range ds {
		env, err := techlist.DecodeEnvelope(d.Payload)
		if err != nil {
			t.Fatal(err)
		}
		got[env.ID] = true
	}
	return got
}

// receiveIDs takes n messages, settles them as stored, and returns their
// envelopes' ids.
func receiveIDs(t *testing.T, c *redis.ChannelConsumer, n int) map[string]bool {
	t.Helper()
	ds := take(t, c, n)
	if err := c.Ack(context.Background(), ds...); err != nil {
		t.Fatal(err)
	}
	return envelopeIDs(t, ds)
}

func sameIDs(t *testing.T, what string, got map[string]bool, want []string) {
	t.Helper()
	missing := 0
	for _, id := range want {
		if !got[id] {
			missing++
		}
	}
	if missing > 0 || len(got) != len(want) {
		t.Errorf("%s: received %d messages, %d of the %d accepted missing", what, len(got), missing, len(want))
	}
}

// checkLeavesWhenFull: a worker that does not settle its messages leaves
// the channel once it holds Buffer of them, so publishes are refused
// instead of piling up; everything accepted before is delivered. Taking
// the messages makes no room (a worker whose batches cannot be stored
// holds them still); once half are settled, it joins again and publishes
// are accepted.
func checkLeavesWhenFull(t *testing.T, rdb goredis.UniversalClient, channel string) {
	const buffer = 10
	c := newChannelConsumer(t, rdb, channel, buffer)
	pub := redis.NewPublisher(rdb, channel)

	accepted, refused := publishN(t, pub, 0, 10*buffer)
	// On a loaded machine the consumer's goroutines may not have read the
	// first messages yet (CI saw 100 accepted in 10 ms): go on, slowly,
	// until it leaves.
	for i, deadline := 10000, time.Now().Add(10*time.Second); !refused && time.Now().Before(deadline); i++ {
		time.Sleep(10 * time.Millisecond)
		var more []string
		more, refused = publishN(t, pub, i, 1)
		accepted = append(accepted, more...)
	}
	if !refused {
		t.Fatalf("%d publishes accepted over 10 s with nothing taken from a buffer of %d; want a refusal once it is full", len(accepted), buffer)
	}
	if len(accepted) < buffer {
		t.Errorf("refused after %d accepted, want at least the buffer's %d", len(accepted), buffer)
	}
	t.Logf("%d publishes accepted before the worker left (buffer %d)", len(accepted), buffer)
	if more, _ := publishN(t, pub, 1000, 1); len(more) != 0 {
		t.Errorf("a publish after the worker left was accepted")
	}
	taken := take(t, c, len(accepted))
	sameIDs(t, "after leaving", envelopeIDs(t, taken), accepted)

	// Taken, not settled: still full, for longer than a lease's renewals.
	for i := range 4 {
		time.Sleep(300 * time.Millisecond)
		if more, _ := publishN(t, pub, 1100+i, 1); len(more) != 0 {
			t.Fatalf("a publish was accepted while the worker held %d unsettled messages (buffer %d)", len(accepted), buffer)
		}
	}
	if n := c.Unsettled(); n != len(accepted) {
		t.Errorf("Unsettled: got %d, want %d", n, len(accepted))
	}

	// Half settled, in all three ways: it joins, and publishes are accepted.
	c.Reject(context.Background(), taken[0], errors.New("malformed"))
	c.Fail(context.Background(), taken[1], errors.New("task failed"))
	c.Ack(context.Background(), taken[2:len(taken)-buffer/2]...)
	var again []string
	deadline := time.Now().Add(10 * time.Second)
	for i := 2000; len(again) == 0; i++ {
		if time.Now().After(deadline) {
			t.Fatalf("publishes still refused 10s after half the messages were settled (%d unsettled)", c.Unsettled())
		}
		again, _ = publishN(t, pub, i, 1)
		time.Sleep(10 * time.Millisecond)
	}
	sameIDs(t, "after joining again", receiveIDs(t, c, 1), again)
}

func TestChannelConsumerLeavesWhenFullAndJoinsAgain(t *testing.T) {
	t.Parallel()
	rdb, names := testenv.Redis(t)
	checkLeavesWhenFull(t, rdb, names.Channel)
}

func TestChannelConsumerLeavesWhenFullOnRedisCluster(t *testing.T) {
	t.Parallel()
	addrs := testenv.RedisCluster(t)
	rdb := redis.NewClient(redis.Config{Addrs: addrs})
	defer rdb.Close()
	checkLeavesWhenFull(t, rdb, "cluster-"+testenv.Suffix())
}

// TestChannelConsumerStopKeepsWhatWasAccepted: publishes go on while the
// worker stops. Once one is refused none is accepted again, and every one
// accepted is handed out before Receive says the subscription is drained.
func TestChannelConsumerStopKeepsWhatWasAccepted(t *testing.T) {
	t.Parallel()
	rdb, names := testenv.Redis(t)
	checkStopKeepsWhatWasAccepted(t, rdb, names.Channel)
}

func TestChannelConsumerStopKeepsWhatWasAcceptedOnRedisCluster(t *testing.T) {
	t.Parallel()
	addrs := testenv.RedisCluster(t)
	rdb := redis.NewClient(redis.Config{Addrs: addrs})
	defer rdb.Close()
	checkStopKeepsWhatWasAccepted(t, rdb, "cluster-"+testenv.Suffix())
}

func checkStopKeepsWhatWasAccepted(t *testing.T, rdb goredis.UniversalClient, channel string) {
	c := newChannelConsumer(t, rdb, channel, 10000)
	pub := redis.NewPublisher(rdb, channel)

	type result struct {
		accepted     []string
		lateAccepted int
	}
	started := make(chan struct{})
	done := make(chan result, 1)
	go func() {
		var r result
		refused := false
		for i := 0; i < 100000; i++ {
			if i == 50 {
				close(started)
			}
			id := fmt.Sprintf("01890a5d-ac96-774b-bcce-%012d", i)
			err := pub.Publish(context.Background(), techlist.NewEnvelope(id, "Go", time.Now()))
			switch {
			case errors.Is(err, techlist.ErrNoSubscribers) && refused && i > 200:
				done <- r
				return
			case errors.Is(err, techlist.ErrNoSubscribers):
				refused = true
			case err != nil:
				t.Errorf("publish: %v", err)
			case refused:
				r.lateAccepted++
			default:
				r.accepted = append(r.accepted, id)
			}
		}
		done <- r
	}()
	<-started
	c.Stop()
	r := <-done
	if r.lateAccepted != 0 {
		t.Errorf("%d publishes accepted after one was refused, want 0", r.lateAccepted)
	}
	t.Logf("%d publishes accepted before the first refusal", len(r.accepted))
	got := receiveIDs(t, c, len(r.accepted))
	sameIDs(t, "after Stop", got, r.accepted)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if d, err := c.Receive(ctx); !errors.Is(err, techlist.ErrDrained) {
		t.Errorf("Receive after everything was taken: got %q, %v; want ErrDrained", d.Payload, err)
	}
	if n, err := rdb.Exists(ctx, redis.WorkersKey(channel)).Result(); err != nil || n != 0 {
		t.Errorf("the register of workers after Stop: EXISTS got %d, %v; want 0", n, err)
	}
}

// TestChannelConsumerRenewsItsLease: the worker stays live for many
// leases while its subscription answers.
func TestChannelConsumerRenewsItsLease(t *testing.T) {
	t.Parallel()
	rdb, names := testenv.Redis(t)
	c := newChannelConsumer(t, rdb, names.Channel, 100)
	pub := redis.NewPublisher(rdb, names.Channel)
	for i := range 6 {
		time.Sleep(300 * time.Millisecond) // half a lease each: 3 leases in all
		if accepted, _ := publishN(t, pub, i, 1); len(accepted) != 1 {
			t.Fatalf("publish %d, %v into the worker's life: refused", i, time.Duration(i+1)*300*time.Millisecond)
		}
	}
	receiveIDs(t, c, 6)
}

// TestChannelConsumerCloseNamesWhatIsLost: messages read and never handed
// out are lost at Close, and its error line names each one's id.
func TestChannelConsumerCloseNamesWhatIsLost(t *testing.T) {
	t.Parallel()
	rdb, names := testenv.Redis(t)
	var logs testenv.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := redis.NewChannelConsumer(ctx, rdb, redis.ChannelConfig{Channel: names.Channel, Worker: "worker-" + testenv.Suffix(),
		Buffer: 100, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	accepted, _ := publishN(t, redis.NewPublisher(rdb, names.Channel), 0, 3)
	for c.Buffered() < len(accepted) {
		if ctx.Err() != nil {
			t.Fatalf("%d of %d messages read", c.Buffered(), len(accepted))
		}
		time.Sleep(10 * time.Millisecond)
	}
	c.Close()
	for _, id := range accepted {
		if !strings.Contains(logs.String(), id) {
			t.Errorf("Close lost %s and did not name it; logs:\n%s", id, logs.String())
		}
	}
}
