package redis_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/techlist/techlist"
	"github.com/techlist/techlist/redis"
	"github.com/techlist/techlist/testenv"
)

// rawSubscribe subscribes a bare connection, as redis-cli would, and waits
// for Redis to confirm: a subscriber that is not a worker.
func rawSubscribe(t *testing.T, rdb goredis.UniversalClient, pattern bool, channel string) *goredis.PubSub {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var ps *goredis.PubSub
	switch {
	case pattern:
		ps = rdb.PSubscribe(ctx, channel)
	case isClusterClient(rdb):
		ps = rdb.SSubscribe(ctx, channel)
	default:
		ps = rdb.Subscribe(ctx, channel)
	}
	if _, err := ps.Receive(ctx); err != nil {
		t.Fatalf("subscribe %s: %v", channel, err)
	}
	t.Cleanup(func() { ps.Close() })
	return ps
}

func isClusterClient(rdb goredis.UniversalClient) bool {
	_, ok := rdb.(*goredis.ClusterClient)
	return ok
}

// checkPublishNeedsWorker: a message is published only when a worker's
// lease is live and the channel has an exact subscriber. A pattern
// subscriber, a stray SUBSCRIBE, an expired or withdrawn lease: refused.
func checkPublishNeedsWorker(t *testing.T, rdb goredis.UniversalClient, channel string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pub := redis.NewPublisher(rdb, channel)
	env := techlist.NewEnvelope("01890a5d-ac96-774b-bcce-b302099a8057", "Go", time.Now())
	publish := func(what string, want error) {
		t.Helper()
		if err := pub.Publish(ctx, env); !errors.Is(err, want) {
			t.Errorf("%s: got %v, want %v", what, err, want)
		}
	}

	publish("nobody at all", techlist.ErrNoSubscribers)
	if !isClusterClient(rdb) { // a pattern subscriber never receives a sharded message
		rawSubscribe(t, rdb, true, channel[:len(channel)-2]+"*")
		publish("a pattern subscriber only", techlist.ErrNoSubscribers)
	}
	stray := rawSubscribe(t, rdb, false, channel)
	publish("a stray SUBSCRIBE only", techlist.ErrNoSubscribers)

	short := redis.NewPresence(rdb, channel, "gone-worker", 100*time.Millisecond)
	if err := short.Renew(ctx); err != nil {
		t.Fatal(err)
	}
	publish("a stray subscriber and a live lease", nil) // the window: see the notes
	time.Sleep(200 * time.Millisecond)
	publish("a stray subscriber and an expired lease", techlist.ErrNoSubscribers)

	worker := redis.NewPresence(rdb, channel, "worker-1", time.Minute)
	if err := worker.Renew(ctx); err != nil {
		t.Fatal(err)
	}
	// Unsubscribed and confirmed, so Redis no longer counts it (a Close
	// would be noticed by Redis a moment later).
	if isClusterClient(rdb) {
		stray.SUnsubscribe(ctx, channel)
	} else {
		stray.Unsubscribe(ctx, channel)
	}
	// The message published to it while the lease was live may come
	// first: read until the confirmation itself.
	for {
		msg, err := stray.Receive(ctx)
		if err != nil {
			t.Fatalf("unsubscribe the stray subscriber: %v", err)
		}
		if sub, ok := msg.(*goredis.Subscription); ok && (sub.Kind == "unsubscribe" || sub.Kind == "sunsubscribe") {
			break
		}
	}
	publish("a live lease and no subscriber", techlist.ErrNoSubscribers)
	rawSubscribe(t, rdb, false, channel)
	publish("a live lease and a subscriber", nil)
	if err := worker.Withdraw(ctx); err != nil {
		t.Fatal(err)
	}
	publish("a withdrawn lease and a subscriber", techlist.ErrNoSubscribers)
	if n, err := rdb.Exists(ctx, redis.WorkersKey(channel)).Result(); err != nil || n != 0 {
		t.Errorf("the register of workers after the last withdrawal: EXISTS got %d, %v; want 0 (nothing left behind)", n, err)
	}
}

func TestPublishNeedsALiveWorker(t *testing.T) {
	t.Parallel()
	rdb, names := testenv.Redis(t)
	checkPublishNeedsWorker(t, rdb, names.Channel)
}

func TestPublishNeedsALiveWorkerOnRedisCluster(t *testing.T) {
	t.Parallel()
	addrs := testenv.RedisCluster(t)
	rdb := redis.NewClient(redis.Config{Addrs: addrs})
	defer rdb.Close()
	checkPublishNeedsWorker(t, rdb, "cluster-"+testenv.Suffix())
}

func TestWorkersKeySharesTheChannelSlot(t *testing.T) {
	for _, tc := range []struct{ channel, key string }{
		{"channel1", "{channel1}:workers"},
		{"{jobs}.eu", "{jobs}.eu:workers"},
	} {
		if got := redis.WorkersKey(tc.channel); got != tc.key {
			t.Errorf("WorkersKey(%q): got %q, want %q", tc.channel, got, tc.key)
		}
	}
}

func TestStreamWorkersKeySharesTheChannelSlot(t *testing.T) {
	for _, tc := range []struct{ channel, key string }{
		{"channel1", "{channel1}:stream-workers"},
		{"{jobs}.eu", "{jobs}.eu:stream-workers"},
	} {
		if got := redis.StreamWorkersKey(tc.channel); got != tc.key {
			t.Errorf("StreamWorkersKey(%q): got %q, want %q", tc.channel, got, tc.key)
		}
	}
}

// Each mode's workers are counted in their own register; an api-server in
// streams mode has a problem only while pub/sub workers are live and no
// streams worker is, and a pub/sub worker only while the stream holds
// entries and no streams worker reads them.
func TestQueueModeProblems(t *testing.T) {
	t.Parallel()
	rdb, names := testenv.Redis(t)
	ctx := context.Background()
	channel := names.Channel
	var waiting int64
	backlog := func(context.Context) (int64, error) { return waiting, nil }
	check := func(what string, pubsub, streams int64, apiProblem, workerProblem bool) {
		t.Helper()
		n, err := redis.CountWorkers(ctx, rdb, channel)
		if err != nil || n != (redis.LiveWorkers{PubSub: pubsub, Streams: streams}) {
			t.Errorf("%s: CountWorkers got %+v, %v; want %d pubsub, %d streams", what, n, err, pubsub, streams)
		}
		p, err := redis.StreamsModeProblem(ctx, rdb, channel)
		if err != nil || (p != "") != apiProblem || (apiProblem && !strings.Contains(p, "QUEUE_MODE")) {
			t.Errorf("%s: StreamsModeProblem got %q, %v; want a problem naming QUEUE_MODE: %t", what, p, err, apiProblem)
		}
		p, err = redis.PubSubModeProblem(ctx, rdb, channel, backlog)
		if err != nil || (p != "") != workerProblem || (workerProblem && !strings.Contains(p, "QUEUE_MODE")) {
			t.Errorf("%s: PubSubModeProblem got %q, %v; want a problem naming QUEUE_MODE: %t", what, p, err, workerProblem)
		}
	}
	check("no worker at all", 0, 0, false, false)
	waiting = 3
	check("no worker, entries in the stream", 0, 0, false, true)
	pubsub := redis.NewPresence(rdb, channel, "pubsub-1", time.Minute)
	if err := pubsub.Renew(ctx); err != nil {
		t.Fatal(err)
	}
	check("a pub/sub worker only", 1, 0, true, true)

	keepCtx, stop := context.WithCancel(ctx)
	kept := make(chan struct{})
	go func() {
		defer close(kept)
		redis.NewStreamPresence(rdb, channel, "streams-1", time.Minute).Keep(keepCtx, slog.New(slog.DiscardHandler))
	}()
	testenv.Eventually(t, "the streams worker's lease", func() bool {
		n, err := redis.CountWorkers(ctx, rdb, channel)
		return err == nil && n.Streams == 1
	})
	check("a worker of each mode", 1, 1, false, false)
	stop()
	<-kept
	check("the streams worker withdrawn", 1, 0, true, true)
	if err := pubsub.Withdraw(ctx); err != nil {
		t.Fatal(err)
	}
	check("both withdrawn", 0, 0, false, true)
}
