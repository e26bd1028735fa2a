package redis_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/techlist/techlist"
	"github.com/techlist/techlist/redis"
	"github.com/techlist/techlist/testenv"
)

// intakeID is the i-th test envelope id of a test run (UUIDv7 shaped).
func intakeID(run string, i int) string {
	return fmt.Sprintf("01890a5d-ac96-774b-%04x-%s", 0x8000|i, run)
}

// publishAll publishes n envelopes through in at once, one goroutine each,
// and returns each one's error.
func publishAll(ctx context.Context, in *redis.Intake, run string, n int) []error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			errs[i] = in.Publish(ctx, techlist.NewEnvelope(intakeID(run, i), fmt.Sprintf("tech %d", i), time.Now()))
		})
	}
	wg.Wait()
	return errs
}

// gate holds an AutoPipeline's first flush until it is opened, so that the
// callers that arrive meanwhile are sent together in the next one, whose
// size it records.
type gate struct {
	entered, open chan struct{}
	opened        sync.Once
	mu            sync.Mutex
	sizes         []int
}

// newGate gates a; the gate opens at the latest when the test ends, so a
// failed test does not leave the flusher (and a's Close) stuck.
func newGate(t *testing.T, a *redis.AutoPipeline) *gate {
	g := &gate{entered: make(chan struct{}), open: make(chan struct{})}
	t.Cleanup(g.release)
	redis.SetBeforeFlush(a, func(n int) {
		g.mu.Lock()
		g.sizes = append(g.sizes, n)
		first := len(g.sizes) == 1
		g.mu.Unlock()
		if first {
			close(g.entered)
			<-g.open
		}
	})
	return g
}

// hold sends a first caller through a and returns once the flusher holds
// it; the caller's error arrives on the channel once the gate opens.
func (g *gate) hold(t *testing.T, a *redis.AutoPipeline, rdb goredis.UniversalClient) <-chan error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- a.Do(context.Background(), rdb.Ping(context.Background())) }()
	<-g.entered
	return done
}

func (g *gate) release() { g.opened.Do(func() { close(g.open) }) }

func (g *gate) batchSizes() []int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]int(nil), g.sizes...)
}

func waitQueued(t *testing.T, a *redis.AutoPipeline, n int) {
	t.Helper()
	testenv.Eventually(t, fmt.Sprintf("%d callers queued", n), func() bool { return redis.Queued(a) == n })
}

func streamIntake(t *testing.T, rdb goredis.UniversalClient, pipe *redis.AutoPipeline, prefix, stream string, maxLen int64) (*redis.Intake, *redis.PendingIndex, *redis.StreamPublisher) {
	t.Helper()
	pending := redis.NewPendingIndex(redis.NewCache(rdb, prefix, time.Minute))
	pub := redis.NewStreamPublisher(rdb, stream, maxLen, time.Minute)
	return redis.NewIntake(pipe, pub, pending, time.Hour), pending, pub
}

// checkAccepted checks that each of the n envelopes of run is pending
// (mark and index) and that the stream holds each once.
func checkAccepted(t *testing.T, rdb goredis.UniversalClient, pending *redis.PendingIndex, stream, run string, n int, skip, unmarked map[int]bool) {
	t.Helper()
	ctx := context.Background()
	for i := range n {
		ok, err := pending.Pending(ctx, intakeID(run, i))
		if err != nil || ok == unmarked[i] {
			t.Errorf("envelope %d: pending %v (%v), want %v", i, ok, err, !unmarked[i])
		}
	}
	if got, err := pending.Count(ctx); err != nil || got != int64(n-len(unmarked)) {
		t.Errorf("pending index: got %d (%v), want %d", got, err, n-len(unmarked))
	}
	entries, err := rdb.XRange(ctx, stream, "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, e := range entries {
		env, err := techlist.DecodeEnvelope([]byte(e.Values["envelope"].(string)))
		if err != nil {
			t.Fatal(err)
		}
		seen[env.ID]++
	}
	for i := range n {
		if want := map[bool]int{false: 1, true: 0}[skip[i]]; seen[intakeID(run, i)] != want {
			t.Errorf("envelope %d: in the stream %d times, want %d", i, seen[intakeID(run, i)], want)
		}
	}
	if len(entries) != n-len(skip) {
		t.Errorf("stream length: got %d, want %d", len(entries), n-len(skip))
	}
}

// Many concurrent publishers share pipelines; each is marked pending,
// indexed and appended once, and publishing them all again appends nothing.
func TestIntakeStreamsConcurrent(t *testing.T) {
	t.Parallel()
	rdb, names := testenv.Redis(t)
	testIntakeStreamsConcurrent(t, rdb, names.Prefix, names.Prefix+":stream")
}

func testIntakeStreamsConcurrent(t *testing.T, rdb goredis.UniversalClient, prefix, stream string) {
	pipe := redis.NewAutoPipeline(rdb, 16)
	defer pipe.Close()
	in, pending, _ := streamIntake(t, rdb, pipe, prefix, stream, 10_000)
	ctx := context.Background()
	const n = 200
	run := fmt.Sprintf("%012x", time.Now().UnixNano()&0xffffffffffff)
	for round := range 2 { // the second round is all duplicates
		for i, err := range publishAll(ctx, in, run, n) {
			if err != nil {
				t.Fatalf("round %d, envelope %d: %v", round, i, err)
			}
		}
		checkAccepted(t, rdb, pending, stream, run, n, nil, nil)
	}
	if ttl := rdb.PTTL(ctx, prefix+":pending:"+intakeID(run, 0)).Val(); ttl <= 0 || ttl > time.Hour {
		t.Errorf("pending mark TTL: got %v, want up to the Intake's hour", ttl)
	}
}

// With the marks kept without an index (streams mode, where the stream's
// length counts what waits), a publish sets the mark and appends the
// entry, and writes no index: no key of it, and no command on it.
func TestIntakeMarksWithoutIndex(t *testing.T) {
	t.Parallel()
	rdb, names := testenv.Redis(t)
	ctx := context.Background()
	pipe := redis.NewAutoPipeline(rdb, 16)
	defer pipe.Close()
	marks := redis.NewPendingMarks(redis.NewCache(rdb, names.Prefix, time.Minute))
	stream := names.Prefix + ":stream"
	in := redis.NewIntake(pipe, redis.NewStreamPublisher(rdb, stream, 10_000, time.Minute), marks, time.Hour)
	run := fmt.Sprintf("%012x", time.Now().UnixNano()&0xffffffffffff)
	for i, err := range publishAll(ctx, in, run, 50) {
		if err != nil {
			t.Fatalf("envelope %d: %v", i, err)
		}
	}
	for i := range 50 {
		if ok, err := marks.Pending(ctx, intakeID(run, i)); !ok || err != nil {
			t.Fatalf("envelope %d: pending %v (%v), want true", i, ok, err)
		}
	}
	if n := rdb.XLen(ctx, stream).Val(); n != 50 {
		t.Errorf("stream length: got %d, want 50", n)
	}
	if n := rdb.Exists(ctx, names.Prefix+":pending-index").Val(); n != 0 {
		t.Errorf("the pending index exists (%d), want no index kept", n)
	}
	if err := marks.ClearPending(ctx, intakeID(run, 0)); err != nil {
		t.Fatal(err)
	}
	if ok, _ := marks.Pending(ctx, intakeID(run, 0)); ok {
		t.Error("a cleared mark is still pending")
	}
	if _, err := marks.Count(ctx); err == nil {
		t.Error("Count without an index: got no error")
	}
}

// Callers queued while a pipeline is on the wire go together in the next
// one, and each gets its own outcome: one whose entry fails (its marker key
// holds a hash, so the script errors), one whose stream is full, and one
// whose context ends while it waits do not change the others'.
func TestIntakeBatchOutcomesAreEachCallers(t *testing.T) {
	t.Parallel()
	rdb, names := testenv.Redis(t)
	ctx := context.Background()
	pipe := redis.NewAutoPipeline(rdb, 64)
	t.Cleanup(func() { pipe.Close() }) // after the gate's cleanup
	g := newGate(t, pipe)
	stream, fullStream := names.Prefix+":stream", names.Prefix+":full"
	in, pending, _ := streamIntake(t, rdb, pipe, names.Prefix, stream, 1000)
	full, _, _ := streamIntake(t, rdb, pipe, names.Prefix, fullStream, 1)
	rdb.XAdd(ctx, &goredis.XAddArgs{Stream: fullStream, Values: []any{"envelope", "{}"}})
	run := fmt.Sprintf("%012x", time.Now().UnixNano()&0xffffffffffff)
	const bad, cancelled = 3, 7
	rdb.HSet(ctx, "{"+stream+"}:appended:"+intakeID(run, bad), "x", "1")

	first := g.hold(t, pipe, rdb)
	const n = 20
	errs := make([]error, n+1)
	var wg sync.WaitGroup
	cctx, cancel := context.WithCancel(ctx)
	cancelledErr := make(chan error, 1)
	go func() {
		cancelledErr <- in.Publish(cctx, techlist.NewEnvelope(intakeID(run, cancelled), "Go", time.Now()))
	}()
	for i := range n {
		if i != cancelled {
			wg.Go(func() { errs[i] = in.Publish(ctx, techlist.NewEnvelope(intakeID(run, i), "Go", time.Now())) })
		}
	}
	wg.Go(func() { errs[n] = full.Publish(ctx, techlist.NewEnvelope(intakeID(run, 99), "Go", time.Now())) })
	waitQueued(t, pipe, n+1)
	cancel()
	if err := <-cancelledErr; !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled caller: got %v, want context.Canceled", err)
	}
	g.release()
	wg.Wait()
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if got := g.batchSizes(); len(got) != 2 || got[1] != n+1 {
		t.Errorf("batches: got sizes %v, want [1 %d]: the queued callers in one pipeline", got, n+1)
	}
	for i, err := range errs[:n] {
		switch {
		case i == cancelled:
		case i == bad:
			if err == nil || errors.Is(err, techlist.ErrNotSent) || errors.Is(err, techlist.ErrQueueFull) {
				t.Errorf("the failing entry: got %v, want an error of unknown outcome", err)
			}
		case err != nil:
			t.Errorf("envelope %d: got %v, want nil", i, err)
		}
	}
	if !errors.Is(errs[n], techlist.ErrQueueFull) {
		t.Errorf("the full stream's caller: got %v, want ErrQueueFull", errs[n])
	}
	// The failing entry keeps its mark (it may be retried); the cancelled
	// one was never sent; the refused one's mark is cleared, as the
	// api-server does.
	if err := pending.ClearPending(ctx, intakeID(run, 99)); err != nil {
		t.Fatal(err)
	}
	checkAccepted(t, rdb, pending, stream, run, n, map[int]bool{bad: true, cancelled: true}, map[int]bool{cancelled: true})
}

// A closed AutoPipeline sends what was queued before Close, then refuses
// callers with ErrNotSent.
func TestIntakeClosed(t *testing.T) {
	t.Parallel()
	rdb, names := testenv.Redis(t)
	pipe := redis.NewAutoPipeline(rdb, 8)
	g := newGate(t, pipe)
	stream := names.Prefix + ":stream"
	in, pending, _ := streamIntake(t, rdb, pipe, names.Prefix, stream, 1000)
	run := fmt.Sprintf("%012x", time.Now().UnixNano()&0xffffffffffff)
	first := g.hold(t, pipe, rdb)
	const n = 5
	errc := make(chan []error, 1)
	go func() { errc <- publishAll(context.Background(), in, run, n) }()
	waitQueued(t, pipe, n)
	closed := make(chan error, 1)
	go func() { closed <- pipe.Close() }()
	g.release()
	<-first
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	for i, err := range <-errc {
		if err != nil {
			t.Errorf("queued before Close, envelope %d: got %v, want it sent", i, err)
		}
	}
	err := in.Publish(context.Background(), techlist.NewEnvelope(intakeID(run, n), "Go", time.Now()))
	if !errors.Is(err, techlist.ErrNotSent) || !errors.Is(err, redis.ErrPipelineClosed) {
		t.Errorf("after Close: got %v, want ErrPipelineClosed (ErrNotSent)", err)
	}
	checkAccepted(t, rdb, pending, stream, run, n, nil, nil)
}

// The queue is bounded: with a batch's worth waiting, the next caller
// waits for room, and gives up with ErrNotSent when its context ends.
func TestAutoPipelineIsBounded(t *testing.T) {
	t.Parallel()
	rdb, _ := testenv.Redis(t)
	ctx := context.Background()
	pipe := redis.NewAutoPipeline(rdb, 2)
	t.Cleanup(func() { pipe.Close() }) // after the gate's cleanup
	g := newGate(t, pipe)
	first := g.hold(t, pipe, rdb)
	waiting := make(chan error, 2)
	for range 2 {
		go func() { waiting <- pipe.Do(ctx, rdb.Ping(ctx)) }()
	}
	waitQueued(t, pipe, 2)
	cctx, cancel := context.WithCancel(ctx)
	third := make(chan error, 1)
	go func() { third <- pipe.Do(cctx, rdb.Ping(ctx)) }()
	testenv.Eventually(t, "the third caller waits for room", func() bool { return redis.Blocked(pipe) == 1 })
	if n := redis.Queued(pipe); n != 2 {
		t.Errorf("queued: got %d, want the bound of 2", n)
	}
	cancel()
	if err := <-third; !errors.Is(err, techlist.ErrNotSent) || !errors.Is(err, context.Canceled) {
		t.Errorf("no room: got %v, want ErrNotSent and context.Canceled", err)
	}
	g.release()
	for _, c := range []<-chan error{first, waiting, waiting} {
		if err := <-c; err != nil {
			t.Errorf("queued caller: %v", err)
		}
	}
}

// In pub/sub mode a grouped publish keeps, per request, the rule that a
// message nobody received is refused: callers to a channel with a worker
// and to one without, in one pipeline, each get their own outcome.
func TestIntakePubSubPerRequestRefusal(t *testing.T) {
	t.Parallel()
	rdb, names := testenv.Redis(t)
	testIntakePubSub(t, rdb, names.Prefix, names.Channel)
}

func testIntakePubSub(t *testing.T, rdb goredis.UniversalClient, prefix, channel string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sub, err := redis.NewChannelConsumer(ctx, rdb, redis.ChannelConfig{Channel: channel, Worker: "w", Buffer: 1000})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	pipe := redis.NewAutoPipeline(rdb, 64)
	t.Cleanup(func() { pipe.Close() }) // after the gate's cleanup
	g := newGate(t, pipe)
	pending := redis.NewPendingIndex(redis.NewCache(rdb, prefix, time.Minute))
	live := redis.NewIntake(pipe, redis.NewPublisher(rdb, channel), pending, time.Hour)
	nobody := redis.NewIntake(pipe, redis.NewPublisher(rdb, channel+"-nobody"), pending, time.Hour)
	run := fmt.Sprintf("%012x", time.Now().UnixNano()&0xffffffffffff)
	first := g.hold(t, pipe, rdb)
	const n = 30
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		in := live
		if i%3 == 0 {
			in = nobody
		}
		wg.Go(func() { errs[i] = in.Publish(ctx, techlist.NewEnvelope(intakeID(run, i), "Go", time.Now())) })
	}
	waitQueued(t, pipe, n)
	g.release()
	wg.Wait()
	<-first
	if got := g.batchSizes(); len(got) != 2 || got[1] != n {
		t.Errorf("batches: got sizes %v, want [1 %d]", got, n)
	}
	want := map[string]bool{}
	for i, err := range errs {
		if i%3 == 0 {
			if !errors.Is(err, techlist.ErrNoSubscribers) {
				t.Errorf("envelope %d, no worker: got %v, want ErrNoSubscribers", i, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("envelope %d, worker live: got %v, want nil", i, err)
		}
		want[intakeID(run, i)] = true
	}
	for len(want) > 0 {
		d, err := sub.Receive(ctx)
		if err != nil {
			t.Fatalf("receive (%d still missing): %v", len(want), err)
		}
		env, err := techlist.DecodeEnvelope(d.Payload)
		if err != nil || !want[env.ID] {
			t.Fatalf("received %+v (%v), not one of those published", env, err)
		}
		delete(want, env.ID)
	}
}

// On a three-master cluster the pending mark, its index and the queue's
// keys live in different slots: go-redis splits each shared pipeline by
// slot, and every outcome is as on one node. A script cache emptied under
// the pipeline (a restart or failover) is loaded again.
func TestIntakeOnRedisCluster(t *testing.T) {
	t.Parallel()
	rdb := redis.NewClient(redis.Config{Addrs: testenv.RedisCluster(t)})
	defer rdb.Close()
	s := testenv.Suffix()
	t.Run("streams", func(t *testing.T) { testIntakeStreamsConcurrent(t, rdb, "c-"+s, "c-"+s+"-stream") })
	t.Run("pubsub", func(t *testing.T) { testIntakePubSub(t, rdb, "c-"+s, "c-"+s+"-channel") })
	t.Run("noscript", func(t *testing.T) {
		ctx := context.Background()
		err := rdb.(*goredis.ClusterClient).ForEachMaster(ctx, func(ctx context.Context, c *goredis.Client) error {
			return c.ScriptFlush(ctx).Err()
		})
		if err != nil {
			t.Fatal(err)
		}
		testIntakeStreamsConcurrent(t, rdb, "c2-"+s, "c2-"+s+"-stream")
	})
}

// With no Redis to connect to, nothing was sent: a clear refusal
// (ErrNotSent), not an unknown outcome.
func TestIntakeUnreachableIsNotSent(t *testing.T) {
	t.Parallel()
	rdb := redis.NewClient(redis.Config{Addrs: []string{fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))}})
	defer rdb.Close()
	pipe := redis.NewAutoPipeline(rdb, 8)
	defer pipe.Close()
	in, _, _ := streamIntake(t, rdb, pipe, "unreachable", "unreachable-stream", 10)
	err := in.Publish(context.Background(), techlist.NewEnvelope(intakeID("000000000000", 0), "Go", time.Now()))
	if !errors.Is(err, techlist.ErrNotSent) {
		t.Errorf("got %v, want ErrNotSent", err)
	}
}

// A publish that took while its pending mark did not (here the index
// holds a string, so its script fails) is not a success: a 202 promises
// the mark, so the caller gets an error of unknown outcome, and retries.
func TestIntakeMarkFailedIsNotASuccess(t *testing.T) {
	t.Parallel()
	rdb, names := testenv.Redis(t)
	ctx := context.Background()
	pipe := redis.NewAutoPipeline(rdb, 8)
	defer pipe.Close()
	stream := names.Prefix + ":stream"
	in, _, _ := streamIntake(t, rdb, pipe, names.Prefix, stream, 10)
	rdb.Set(ctx, names.Prefix+":pending-index", "not a sorted set", 0)
	err := in.Publish(ctx, techlist.NewEnvelope(intakeID("000000000001", 0), "Go", time.Now()))
	if err == nil || errors.Is(err, techlist.ErrNotSent) || errors.Is(err, techlist.ErrQueueFull) {
		t.Errorf("got %v, want an error of unknown outcome", err)
	}
	if n := rdb.XLen(ctx, stream).Val(); n != 1 {
		t.Errorf("stream length: got %d, want 1 (the publish itself took)", n)
	}
}
