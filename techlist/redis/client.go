// Package redis holds the Redis side of the architecture: the client
// (NewClient); the cache the api-server reads through and the worker
// invalidates (Cache), with the marks of accepted techs not yet stored and
// their count (PendingIndex); the Idempotency-Key records (Idempotency);
// the two queues that carry envelopes from the api-server to the worker,
// the pub/sub channel (Publisher, ChannelConsumer, Presence) and the stream
// (StreamPublisher, StreamConsumer, the dead letters); and the tech.created
// events (EventPublisher, SubscribeEvents). Each file is named after the
// concern it holds.
//
// What it hands to the code above it and the errors it reports
// (techlist.Delivery, techlist.ErrNoSubscribers, techlist.ErrQueueFull,
// techlist.ErrDrained, techlist.BadEventError, techlist.KeyReservation)
// are declared in package techlist, so that code need not import this one
// for them.
package redis

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/extra/redisotel/v9"
	goredis "github.com/redis/go-redis/v9"
	"github.com/techlist/techlist/config"
	"go.opentelemetry.io/otel/trace"
)

// Config says how to reach Redis: one address, or several for a cluster.
type Config struct {
	Addrs    []string
	Username string
	Password string
}

// ConfigFromEnv reads REDIS_ADDRS, or REDIS_HOST and REDIS_PORT when it is
// empty, and REDIS_USERNAME and REDIS_PASSWORD.
func ConfigFromEnv(env *config.Env) Config {
	addrs := env.List("REDIS_ADDRS", "")
	host := env.String("REDIS_HOST", "127.0.0.1")
	port := env.Int("REDIS_PORT", 6379, 1, 65535)
	if len(addrs) == 0 {
		addrs = []string{net.JoinHostPort(host, strconv.Itoa(port))}
	}
	for _, a := range addrs {
		if _, _, err := net.SplitHostPort(a); err != nil {
			env.Fail("REDIS_ADDRS", strings.Join(addrs, ","), "want a comma list of host:port")
			break
		}
	}
	return Config{
		Addrs:    addrs,
		Username: env.String("REDIS_USERNAME", ""),
		Password: env.Raw("REDIS_PASSWORD", ""),
	}
}

// NewClient returns a client for cfg: a cluster client when cfg names more
// than one address, else a plain one. Timeouts are short so that a Redis
// outage turns into a quick error the caller can degrade on, not a hang.
// The caller closes it.
func NewClient(cfg Config) goredis.UniversalClient {
	return goredis.NewUniversalClient(&goredis.UniversalOptions{
		Addrs:        cfg.Addrs,
		Username:     cfg.Username,
		Password:     cfg.Password,
		DialTimeout:  2 * time.Second,
		ReadTimeout:  time.Second,
		WriteTimeout: time.Second,
		PoolTimeout:  2 * time.Second,
	})
}

// Ping checks that Redis answers.
func Ping(ctx context.Context, rdb goredis.UniversalClient) error {
	if err := rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis: %w", err)
	}
	return nil
}

// isCluster reports whether rdb talks to a Redis Cluster. There the work
// channel uses sharded pub/sub (SPUBLISH, SSUBSCRIBE, Redis 7): a plain
// PUBLISH counts only the receivers on the node it reached, so "nobody
// received it" could not be told apart from "received on another node".
func isCluster(rdb goredis.UniversalClient) bool {
	_, ok := rdb.(*goredis.ClusterClient)
	return ok
}

// Trace makes each command rdb sends a span of tp's, without its
// arguments (a PUBLISH's would hold the submitted text).
func Trace(rdb goredis.UniversalClient, tp trace.TracerProvider) error {
	if err := redisotel.InstrumentTracing(rdb, redisotel.WithTracerProvider(tp), redisotel.WithDBStatement(false)); err != nil {
		return fmt.Errorf("trace redis commands: %w", err)
	}
	return nil
}
