package redis_test

import (
	"context"
	"errors"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
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

// Partitioned streams on a real three-master cluster: three partitions on
// three masters (by Redis's own CLUSTER KEYSLOT and slot owners), every
// key of a partition in its slot, publishes through the shared pipeline
// (split per node by go-redis), and a consumer draining all three.
func TestPartitionsOnRedisCluster(t *testing.T) {
	t.Parallel()
	addrs := testenv.RedisCluster(t)
	rdb := redis.NewClient(redis.Config{Addrs: addrs})
	defer rdb.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	names := testenv.Names{Prefix: "cluster-" + testenv.Suffix(), Channel: "cluster-" + testenv.Suffix()}
	cluster := rdb.(*goredis.ClusterClient)

	masters := map[string]string{}
	for _, s := range redis.PartitionStreams(names.Channel, 3) {
		slot, err := cluster.ClusterKeySlot(ctx, s).Result()
		if err != nil || int(slot) != redis.KeySlot(s) {
			t.Fatalf("CLUSTER KEYSLOT %s: got %d, %v; computed %d", s, slot, err, redis.KeySlot(s))
		}
		for _, k := range redis.StreamKeys(s, "01890a5d-ac96-774b-bcce-b302099a8057") {
			if ks, _ := cluster.ClusterKeySlot(ctx, k).Result(); ks != slot {
				t.Errorf("key %s in slot %d, want its partition's %d", k, ks, slot)
			}
		}
		master, err := cluster.MasterForKey(ctx, s)
		if err != nil {
			t.Fatal(err)
		}
		if other, ok := masters[master.Options().Addr]; ok {
			t.Errorf("partitions %s and %s on the same master %s", other, s, master.Options().Addr)
		}
		masters[master.Options().Addr] = s
	}

	in, pub := partitionedIntake(t, rdb, names, 3, 1000)
	for i, err := range publishAll(ctx, in, "b302099a8057", 60) {
		if err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
	}
	cfg := streamConfig(names.Channel, "c")
	cfg.Partitions = 3
	c := newConsumer(t, rdb, cfg)
	seen := map[string]bool{}
	var last techlist.Delivery
	for range 60 {
		last = receive(t, c)
		env, err := techlist.DecodeEnvelope(last.Payload)
		if err != nil {
			t.Fatal(err)
		}
		seen[env.ID] = true
		if len(seen) < 60 {
			if err := c.Ack(ctx, last); err != nil {
				t.Fatal(err)
			}
		}
	}
	if len(seen) != 60 {
		t.Errorf("got %d distinct envelopes, want 60", len(seen))
	}
	if err := c.Fail(ctx, last, errors.New("test")); err != nil {
		t.Fatalf("Fail on a partition: %v", err)
	}
	if err := c.Reject(ctx, last, errors.New("test")); err != nil {
		t.Fatalf("Reject on a partition: %v", err)
	}
	stream := c.Streams()[last.Partition]
	if n, err := redis.NewStreamPublisher(rdb, stream, 10, time.Minute).ReplayDeadLetters(ctx); err != nil || n != 1 {
		t.Fatalf("replay on partition %s: got %d, %v; want 1", stream, n, err)
	}
	if n, err := pub.Backlog(ctx); err != nil || n != 1 {
		t.Errorf("backlog: got %d, %v; want the 1 replayed", n, err)
	}
}
