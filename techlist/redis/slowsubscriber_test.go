package redis_test

import (
	"context"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/techlist/techlist/redis"
	"github.com/techlist/techlist/testenv"
)

// startTightRedis starts a redis-server of the test's own whose
// client-output-buffer-limit for pub/sub clients is small, so a subscriber
// that stops reading is soon disconnected (the shared server's settings
// are left alone). It is stopped when the test ends.
func startTightRedis(t *testing.T) goredis.UniversalClient {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Skip("redis-server is not on the PATH")
	}
	port := testenv.FreePort(t)
	cmd := exec.Command("redis-server", "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", t.TempDir(),
		"--client-output-buffer-limit", "pubsub 256kb 128kb 1")
	if err := cmd.Start(); err != nil {
		t.Fatalf("start redis-server: %v", err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	rdb := redis.NewClient(redis.Config{Addrs: []string{"127.0.0.1:" + strconv.Itoa(port)}})
	t.Cleanup(func() { rdb.Close() })
	deadline := time.Now().Add(10 * time.Second)
	for rdb.Ping(context.Background()).Err() != nil {
		if time.Now().After(deadline) {
			t.Fatal("redis-server did not answer within 10s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	return rdb
}

// TestChannelConsumerIsNeverASlowSubscriber: nobody takes from the
// consumer (a worker whose MySQL is down), 12 MB are published in 1 kB
// messages, and Redis' pubsub output limit is 256 kB. The consumer reads everything into
// its buffer and is still subscribed. A subscription nobody reads, as the
// old worker's was while its tasks were blocked, is disconnected by Redis
// under the same load: what was in its output buffer is lost.
func TestChannelConsumerIsNeverASlowSubscriber(t *testing.T) {
	rdb := startTightRedis(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const channel, messages = "slow", 12000
	payload := strings.Repeat("x", 1<<10)

	c, err := redis.NewChannelConsumer(ctx, rdb, redis.ChannelConfig{Channel: channel, Worker: "w", Buffer: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	unread := rdb.Subscribe(ctx, channel)
	defer unread.Close()
	if _, err := unread.Receive(ctx); err != nil {
		t.Fatal(err)
	}

	// In pipelines of 50 (50 kB), paced so the consumer's reader is never
	// more than 100 behind: the test is about a worker that does not take
	// its messages, not about a burst faster than one connection reads.
	for i := 0; i < messages; i += 50 {
		for c.Buffered() < i-100 && ctx.Err() == nil {
			time.Sleep(time.Millisecond)
		}
		_, err := rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
			for range 50 {
				p.Publish(ctx, channel, payload)
			}
			return nil
		})
		if err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
	}
	for c.Buffered() < messages {
		if ctx.Err() != nil {
			t.Fatalf("the consumer read %d of %d messages", c.Buffered(), messages)
		}
		time.Sleep(10 * time.Millisecond)
	}
	n, err := rdb.PubSubNumSub(ctx, channel).Result()
	if err != nil {
		t.Fatal(err)
	}
	if n[channel] != 1 {
		t.Errorf("subscribers after the load: got %d, want 1 (the consumer, still subscribed; the unread one dropped by Redis)", n[channel])
	}
}
