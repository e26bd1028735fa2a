package main

import (
	"context"
	"log/slog"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/techlist/techlist/redis"
	"github.com/techlist/techlist/service"
)

// streamLease is how long a streams worker counts as live in its register
// without a renewal (renewed every third of it).
const streamLease = 10 * time.Second

// modeCheckPeriod is how often a pub/sub worker looks for a stream that
// an api-server in streams mode fills.
const modeCheckPeriod = 30 * time.Second

// announceStreams keeps this streams worker in the register of channel's
// stream workers until ctx ends or stop is called, so an api-server in
// streams mode can tell it from a pub/sub worker (see
// redis.StreamsModeProblem). stop withdraws it and waits.
func announceStreams(ctx context.Context, rdb goredis.UniversalClient, cfg settings, logger *slog.Logger) (stop func()) {
	presence := redis.NewStreamPresence(rdb, cfg.channel, cfg.stream.Consumer, streamLease)
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		presence.Keep(ctx, logger)
	}()
	return func() {
		cancel()
		<-done
	}
}

// watchStream has a pub/sub worker log an error, at start and whenever it
// begins, while channel's streams hold entries that no streams worker
// reads: an api-server runs QUEUE_MODE=streams and what it accepts waits
// there. The worker goes on serving the pub/sub channel.
func watchStream(ctx context.Context, rdb goredis.UniversalClient, cfg settings, logger *slog.Logger) (stop func()) {
	// Every stream a streams worker would drain: with STREAM_PARTITIONS
	// the api-server's entries wait in the partitions, not the single one.
	backlog := func(ctx context.Context) (int64, error) {
		return redis.KnownBacklog(ctx, rdb, cfg.channel, cfg.stream.Partitions)
	}
	watch := service.NewWatch("queue_mode", func(ctx context.Context) (string, error) {
		return redis.PubSubModeProblem(ctx, rdb, cfg.channel, backlog)
	}, logger)
	return watch.Start(ctx, modeCheckPeriod)
}
