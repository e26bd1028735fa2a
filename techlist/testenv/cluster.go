package testenv

import (
	"context"
	"testing"
	"time"

	"github.com/techlist/techlist/testenv/rediscluster"
)

// RedisCluster starts a throwaway Redis Cluster of three masters from the
// redis-server binary, on free loopback ports (package rediscluster), and
// returns their addresses. The nodes are killed when the test ends.
// Without redis-server and redis-cli on the PATH the test is skipped (or
// fails under REQUIRE_SERVICES or CI).
func RedisCluster(tb testing.TB) []string {
	tb.Helper()
	NeedRedisBinaries(tb)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := rediscluster.Start(ctx, tb.TempDir())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(c.Stop)
	return c.Addrs
}

// NeedRedisBinaries skips the test, or fails it under REQUIRE_SERVICES or
// CI, unless redis-server and redis-cli are on the PATH.
func NeedRedisBinaries(tb testing.TB) {
	tb.Helper()
	if err := rediscluster.Available(); err != nil {
		unavailable(tb, "a Redis Cluster of our own", err)
	}
}
