package redis_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/techlist/techlist"
	"github.com/techlist/techlist/redis"
	"github.com/techlist/techlist/testenv"
)

// The adapters on a real three-master Redis Cluster: the channel (sharded
// pub/sub, so the receiver count is right), the cache's script and
// transaction (hash-tagged keys in one slot), and the stream.
func TestAdaptersOnRedisCluster(t *testing.T) {
	t.Parallel()
	addrs := testenv.RedisCluster(t)
	rdb := redis.NewClient(redis.Config{Addrs: addrs})
	defer rdb.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	channel := "cluster-" + testenv.Suffix()

	pub := redis.NewPublisher(rdb, channel)
	env := techlist.NewEnvelope("01890a5d-ac96-774b-bcce-b302099a8057", "Go", time.Now())
	if err := pub.Publish(ctx, env); !errors.Is(err, techlist.ErrNoSubscribers) {
		t.Fatalf("publish without subscriber: got %v, want ErrNoSubscribers", err)
	}
	sub, err := redis.NewChannelConsumer(ctx, rdb, redis.ChannelConfig{Channel: channel, Worker: "w", Buffer: 10})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	if err := pub.Publish(ctx, env); err != nil {
		t.Fatalf("publish with a subscriber: %v", err)
	}
	d, err := sub.Receive(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := techlist.DecodeEnvelope(d.Payload); err != nil || got.ID != env.ID {
		t.Fatalf("received %+v, %v", got, err)
	}

	events, err := redis.SubscribeEvents(ctx, rdb, redis.EventsChannel(channel))
	if err != nil {
		t.Fatal(err)
	}
	defer events.Close()
	tech := techlist.Tech{ID: env.ID, Text: "Go", Priority: techlist.PriorityLow, CreatedAt: time.Now().UTC(), SubmittedAt: time.Now().UTC()}
	if err := redis.NewEventPublisher(rdb, redis.EventsChannel(channel)).PublishCreated(ctx, []techlist.Tech{tech}); err != nil {
		t.Fatal(err)
	}
	if ev, err := events.Receive(ctx); err != nil || ev.Tech.ID != env.ID {
		t.Fatalf("event on the cluster: got %+v, %v", ev, err)
	}

	cache := redis.NewCache(rdb, "cluster-"+testenv.Suffix(), time.Minute)
	_, gen, _, err := cache.Page(ctx, "50:")
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := cache.SetPage(ctx, "50:", []byte("page"), gen); err != nil || !ok {
		t.Fatalf("SetPage: %v, %v", ok, err)
	}
	if err := cache.InvalidateLists(ctx); err != nil {
		t.Fatal(err)
	}
	if err := cache.MarkPending(ctx, env.ID, time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := cache.ClearPending(ctx, env.ID, "01890a5d-ac96-774b-bcce-b302099a8058"); err != nil {
		t.Fatal(err)
	}

	stream := channel + "-stream"
	sc, err := redis.NewStreamConsumer(ctx, rdb, redis.StreamConfig{Stream: stream, Group: "g", Consumer: "c",
		Read: 10, Block: 100 * time.Millisecond, ClaimIdle: 300 * time.Millisecond, MaxDeliveries: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	spub := redis.NewStreamPublisher(rdb, stream, 10, time.Minute)
	if err := spub.Publish(ctx, env); err != nil {
		t.Fatal(err)
	}
	d, err = sc.Receive(ctx)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // the refresh of the held entry runs
	if err := sc.Fail(ctx, d, errors.New("test")); err != nil {
		t.Fatalf("Fail across slots: %v", err)
	}
	if err := sc.Reject(ctx, d, errors.New("test")); err != nil {
		t.Fatalf("Reject across slots: %v", err)
	}
	if n, err := spub.ReplayDeadLetters(ctx); err != nil || n != 1 {
		t.Fatalf("replay across slots: got %d, %v; want 1", n, err)
	}
}
