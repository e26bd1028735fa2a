// Command worker-server takes submitted techs off Redis, runs the priority
// analysis, stores them in MySQL, invalidates the cache and announces them.
// Its HTTP port serves health, readiness and metrics only.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	goredis "github.com/redis/go-redis/v9"
	"github.com/techlist/techlist"
	"github.com/techlist/techlist/config"
	"github.com/techlist/techlist/metrics"
	"github.com/techlist/techlist/mysql"
	"github.com/techlist/techlist/redis"
	"github.com/techlist/techlist/service"
	"github.com/techlist/techlist/tracing"

	"github.com/techlist/worker-server/internal/consumer"
	"github.com/techlist/worker-server/internal/task"
)

func main() { service.Main("worker-server", run) }

type settings struct {
	port            int
	mysql           mysql.Config
	redis           redis.Config
	channel         string
	cachePrefix     string
	queueMode       string
	stream          redis.StreamConfig
	replay          replaySettings
	pubsub          redis.ChannelConfig
	taskCost        time.Duration
	consumer        consumer.Config
	startupTimeout  time.Duration
	shutdownTimeout time.Duration
	adminAddr       string
}

// replaySettings are the api-server's limits, which a replay of the dead
// letters keeps: the stream's bound and the append-once marker's life.
type replaySettings struct {
	streamMaxLen int64
	publishRetry time.Duration
}

func readSettings(env *config.Env) settings {
	shutdown := env.Duration("SHUTDOWN_TIMEOUT", 10*time.Second)
	s := settings{
		port:        env.Int("PORT", 5001, 0, 65535),
		mysql:       mysql.ConfigFromEnv(env),
		redis:       redis.ConfigFromEnv(env),
		channel:     env.String("REDIS_CHANNEL", "channel1"),
		cachePrefix: env.String("REDIS_CACHE", "techlist"),
		queueMode:   env.Enum("QUEUE_MODE", "pubsub", "pubsub", "streams"),
		stream: redis.StreamConfig{
			Group:         env.String("STREAM_GROUP", "workers"),
			Partitions:    env.Int("STREAM_PARTITIONS", 1, 1, redis.MaxPartitions),
			Consumer:      env.String("WORKER_NAME", defaultWorkerName()),
			Block:         time.Second,
			ClaimIdle:     env.Duration("CLAIM_IDLE", 30*time.Second),
			MaxDeliveries: int64(env.Int("MAX_DELIVERIES", 5, 1, 1000)),
		},
		replay: replaySettings{
			streamMaxLen: int64(env.Int("STREAM_MAX_LEN", 1_000_000, 1, 1<<40)),
			publishRetry: env.Duration("PUBLISH_RETRY", 5*time.Second),
		},
		taskCost: env.Duration("TASK_COST", 200*time.Millisecond),
		consumer: consumer.Config{
			Concurrency:  env.Int("WORKER_CONCURRENCY", 64, 1, 10000),
			BatchSize:    env.Int("BATCH_SIZE", 500, 1, 5000),
			BatchWait:    env.Duration("BATCH_WAIT", 5*time.Millisecond),
			Flushers:     env.Int("FLUSHERS", 4, 1, 64),
			DrainTimeout: shutdown,
		},
		startupTimeout:  env.Duration("STARTUP_TIMEOUT", 60*time.Second),
		shutdownTimeout: shutdown,
		adminAddr:       service.AdminAddr(env),
	}
	s.pubsub = redis.ChannelConfig{
		Channel: s.channel,
		Worker:  s.stream.Consumer,
		Buffer:  env.Int("PUBSUB_BUFFER", 2000, 1, 10_000_000),
	}
	s.stream.Stream = s.channel
	s.consumer.Queue = s.channel
	s.stream.Read = s.consumer.BatchSize
	return s
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	healthcheck, deadLetters, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	cfg, logger, tr, err := service.Configure(ctx, "worker-server", getenv, stdout, readSettings)
	if err != nil {
		return err
	}
	if healthcheck {
		return service.HealthCheck(cfg.port)
	}
	if deadLetters != "" {
		return manageDeadLetters(ctx, deadLetters, cfg, stdout)
	}
	logger = logger.With("service", "worker-server")
	defer tr.Flush(logger)
	if tr.Enabled {
		cfg.mysql.Tracer = tr.ChildSpans()
	}
	// The drivers' own log lines go through logger too (JSON stays JSON).
	// Not for -dead-letters above: its standard output is the letters.
	mysql.SetDriverLogger(logger)
	redis.SetDriverLogger(logger)

	store, rdb, err := openStores(ctx, cfg, logger, tr)
	if err != nil {
		return err
	}
	defer store.Close()
	defer rdb.Close()

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics.RegisterPools(reg, store.DB(), rdb)
	// Listen before subscribing: a port already taken fails the start
	// before any message is taken off the queue.
	srv, ln, admin, err := listen(ctx, cfg, logger, reg, store, rdb)
	if err != nil {
		return err
	}
	defer admin.Close()

	src, closeSrc, err := openSource(ctx, logger, cfg, rdb, reg)
	if err != nil {
		ln.Close()
		return err
	}
	defer closeSrc()

	cons, err := newConsumer(cfg, logger, tr, reg, src, store, rdb)
	if err != nil {
		ln.Close()
		return err
	}
	logger.Info("starting", "queue_mode", cfg.queueMode, "channel", cfg.channel, "task_cost", cfg.taskCost,
		"concurrency", cfg.consumer.Concurrency, "batch_size", cfg.consumer.BatchSize)

	return consumeAndServe(ctx, cfg, logger, cons, srv, ln)
}

// listen opens the status port (health, readiness, metrics) and, when
// ADMIN_ADDR is set, the admin listener (pprof), which stays up while the
// worker drains after SIGTERM: the caller closes it.
func listen(ctx context.Context, cfg settings, logger *slog.Logger, reg *prometheus.Registry, store *mysql.Store, rdb goredis.UniversalClient) (*http.Server, net.Listener, *service.Admin, error) {
	srv := service.NewHTTPServer(":"+strconv.Itoa(cfg.port), statusHandler(reg, logger,
		service.Check{Name: "redis", Ping: func(ctx context.Context) error { return redis.Ping(ctx, rdb) }},
		service.Check{Name: "mysql", Ping: store.Ping}), logger)
	ln, err := service.Listen(srv)
	if err != nil {
		return nil, nil, nil, err
	}
	admin, err := service.ServeAdmin(context.WithoutCancel(ctx), cfg.adminAddr, logger)
	if err != nil {
		ln.Close()
		return nil, nil, nil, err
	}
	return srv, ln, admin, nil
}

// newConsumer returns the consumer of src: the task, the store, and what
// follows each commit (acks, marks, the invalidation, the events) in one
// round trip.
func newConsumer(cfg settings, logger *slog.Logger, tr *tracing.Tracing, reg *prometheus.Registry, src consumer.Source, store *mysql.Store, rdb goredis.UniversalClient) (*consumer.Consumer, error) {
	analyser := task.Analyser{Cost: cfg.taskCost}
	cache := redis.NewCache(rdb, cfg.cachePrefix, time.Minute)
	events := redis.NewEventPublisher(rdb, redis.EventsChannel(cfg.channel))
	settler, err := redis.NewSettler(rdb, src, cache, events)
	if err != nil {
		return nil, err
	}
	// The invalidation refills the first list pages readers keep, so a
	// write does not turn their next reads into misses waiting on MySQL.
	settler.Prefill(store)
	registerPrefill(reg, settler)
	return consumer.New(cfg.consumer, consumer.Deps{
		Source:  src,
		Analyse: analyser.Analyse,
		Store:   store,
		Cache:   cache,
		Events:  events,
		Settler: settler,
		Logger:  logger,
		Metrics: consumer.NewMetrics(reg),
		Now:     time.Now,
		Tracing: tr,
	}), nil
}

// parseFlags reads the command line: -healthcheck, or -dead-letters with
// what to do.
func parseFlags(args []string, stderr io.Writer) (healthcheck bool, deadLetters string, err error) {
	flags := flag.NewFlagSet("worker-server", flag.ContinueOnError)
	flags.SetOutput(stderr)
	flags.BoolVar(&healthcheck, "healthcheck", false, "probe the running server's /healthz on PORT and exit")
	flags.StringVar(&deadLetters, "dead-letters", "", "`list` the dead letters of the stream (as JSON lines), or `replay` them, and exit")
	if err := flags.Parse(args); err != nil {
		return false, "", err
	}
	if flags.NArg() > 0 {
		return false, "", fmt.Errorf("unexpected argument %q", flags.Arg(0))
	}
	return healthcheck, deadLetters, nil
}

// openStores opens MySQL, retried until STARTUP_TIMEOUT, and the Redis
// client, both traced when tracing is on. The caller closes both.
func openStores(ctx context.Context, cfg settings, logger *slog.Logger, tr *tracing.Tracing) (*mysql.Store, goredis.UniversalClient, error) {
	var store *mysql.Store
	err := service.Retry(ctx, logger, "mysql", cfg.startupTimeout, func(ctx context.Context) (err error) {
		store, err = mysql.OpenStore(ctx, cfg.mysql)
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	rdb := redis.NewClient(cfg.redis)
	if tr.Enabled {
		if err := redis.Trace(rdb, tr.ChildSpans()); err != nil {
			rdb.Close()
			store.Close()
			return nil, nil, err
		}
	}
	return store, rdb, nil
}

// consumeAndServe runs the consumer and the HTTP server until ctx ends.
// The server stops after the consumer has drained, so /healthz answers for
// as long as the worker still works; if the server fails on its own, the
// consumer is stopped too.
func consumeAndServe(ctx context.Context, cfg settings, logger *slog.Logger, cons *consumer.Consumer, srv *http.Server, ln net.Listener) error {
	consumeCtx, stopConsuming := context.WithCancel(ctx)
	defer stopConsuming()
	serveCtx, stopServing := context.WithCancel(context.WithoutCancel(ctx))
	defer stopServing()
	consumerDone := make(chan error, 1)
	go func() {
		consumerDone <- cons.Run(consumeCtx)
		stopServing()
	}()
	serveErr := service.Serve(serveCtx, srv, ln, logger, cfg.shutdownTimeout)
	stopConsuming()
	consumeErr := <-consumerDone
	if errors.Is(consumeErr, consumer.ErrDrainTimeout) && cfg.queueMode == "streams" {
		// Nothing is lost: the entries stay pending and another worker (or
		// this one, restarted) claims them after CLAIM_IDLE.
		logger.Warn("stopped with entries not stored; they stay pending on the stream for another worker", "err", consumeErr)
		consumeErr = nil
	}
	return errors.Join(consumeErr, serveErr)
}

// manageDeadLetters lists or replays the dead letters of every stream a
// worker drains: the single stream, this STREAM_PARTITIONS' partitions and
// every registered one.
func manageDeadLetters(ctx context.Context, action string, cfg settings, stdout io.Writer) error {
	if action != "list" && action != "replay" {
		return fmt.Errorf("-dead-letters %q: want list or replay", action)
	}
	rdb := redis.NewClient(cfg.redis)
	defer rdb.Close()
	streams, err := redis.KnownStreams(ctx, rdb, cfg.channel, cfg.stream.Partitions)
	if err != nil {
		return err
	}
	for _, stream := range streams {
		if action == "replay" {
			err = replayDeadLetters(ctx, rdb, cfg, stream, stdout)
		} else {
			err = listDeadLetters(ctx, rdb, stream, stdout)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// listDeadLetters writes the dead letters of stream as JSON lines, then a
// line counting them.
func listDeadLetters(ctx context.Context, rdb goredis.UniversalClient, stream string, stdout io.Writer) error {
	letters, err := redis.ListDeadLetters(ctx, rdb, stream, 10000)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(stdout)
	for _, l := range letters {
		if err := enc.Encode(l); err != nil {
			return err
		}
	}
	fmt.Fprintf(stdout, "%d dead letters in %s\n", len(letters), redis.DeadStream(stream))
	return nil
}

// replayDeadLetters appends the dead letters of stream to it again,
// within its share of the api-server's STREAM_MAX_LEN: at the bound it
// stops, leaving the rest dead, and says so.
func replayDeadLetters(ctx context.Context, rdb goredis.UniversalClient, cfg settings, stream string, stdout io.Writer) error {
	maxLen := redis.PartitionMaxLen(cfg.replay.streamMaxLen, cfg.stream.Partitions)
	pub := redis.NewStreamPublisher(rdb, stream, maxLen, redis.MarkerTTL(cfg.replay.publishRetry))
	n, err := pub.ReplayDeadLetters(ctx)
	fmt.Fprintf(stdout, "replayed %d dead letters from %s to %s\n", n, redis.DeadStream(stream), stream)
	if errors.Is(err, techlist.ErrQueueFull) {
		left, _ := rdb.XLen(ctx, redis.DeadStream(stream)).Result()
		return fmt.Errorf("stopped: the stream %s holds its share of STREAM_MAX_LEN (%d of %d over %d partitions); %d dead letters left in %s, replay again once the workers have caught up",
			stream, maxLen, cfg.replay.streamMaxLen, cfg.stream.Partitions, left, redis.DeadStream(stream))
	}
	return err
}

// openSource joins the queue of the configured mode, retrying while Redis
// is not up yet, and returns it with the function that leaves it.
func openSource(ctx context.Context, logger *slog.Logger, cfg settings, rdb goredis.UniversalClient, reg prometheus.Registerer) (consumer.Source, func(), error) {
	if cfg.queueMode == "streams" {
		var sc *redis.StreamConsumer
		cfg.stream.Logger = logger
		err := service.Retry(ctx, logger, "redis consumer group", cfg.startupTimeout, func(ctx context.Context) (err error) {
			sc, err = redis.NewStreamConsumer(ctx, rdb, cfg.stream)
			return err
		})
		if err != nil {
			return nil, nil, err
		}
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "worker_dead_lettered_total", Help: "Stream entries moved to the dead-letter stream by this worker.",
		}, func() float64 { return float64(sc.DeadLettered()) }))
		reg.MustRegister(streamBacklog{consumer: sc})
		stopAnnouncing := announceStreams(ctx, rdb, cfg, logger)
		return sc, func() { stopAnnouncing(); sc.Close() }, nil
	}
	var sub *redis.ChannelConsumer
	chanCfg := cfg.pubsub
	chanCfg.Logger = logger
	err := service.Retry(ctx, logger, "redis subscribe", cfg.startupTimeout, func(ctx context.Context) (err error) {
		sub, err = redis.NewChannelConsumer(ctx, rdb, chanCfg)
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "worker_pubsub_buffered", Help: "Messages read from the channel and not yet taken by a task.",
	}, func() float64 { return float64(sub.Buffered()) }))
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "worker_pubsub_unsettled", Help: "Messages read from the channel and not yet stored, failed or rejected (bounded by PUBSUB_BUFFER).",
	}, func() float64 { return float64(sub.Unsettled()) }))
	if most := drainCapacity(cfg); cfg.pubsub.Buffer > most {
		logger.Warn("PUBSUB_BUFFER is more than the worker can finish within SHUTDOWN_TIMEOUT at TASK_COST and WORKER_CONCURRENCY: a stop under a full buffer loses the rest",
			"pubsub_buffer", cfg.pubsub.Buffer, "drain_capacity", most)
	}
	stopWatching := watchStream(ctx, rdb, cfg, logger)
	return sub, func() { stopWatching(); sub.Close() }, nil
}

// drainCapacity estimates how many messages the worker finishes within
// SHUTDOWN_TIMEOUT when the tasks are what takes the time.
func drainCapacity(cfg settings) int {
	if cfg.taskCost <= 0 {
		return math.MaxInt
	}
	return int(float64(cfg.consumer.Concurrency) * cfg.shutdownTimeout.Seconds() / cfg.taskCost.Seconds())
}

// defaultWorkerName names this process in the consumer group: unique per
// process, so a restarted worker's leftovers are claimed like any other.
func defaultWorkerName() string {
	host, err := os.Hostname()
	if err != nil {
		host = "worker"
	}
	return host + "-" + strconv.Itoa(os.Getpid())
}

// statusHandler serves the worker's health, readiness and metrics.
func statusHandler(reg *prometheus.Registry, logger *slog.Logger, checks ...service.Check) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /healthz", service.Healthz("worker-server"))
	mux.Handle("GET /readyz", service.Readyz(logger, checks...))
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	return mux
}

// registerPrefill exports the prefill's SELECTs and failures: with the
// api-server's api_cache_list_queries_total they are the list queries a
// write costs.
func registerPrefill(reg prometheus.Registerer, s *redis.Settler) {
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "worker_list_prefills_total", Help: "SELECTs of the first list pages sent to refill them with an invalidation.",
	}, func() float64 { return float64(s.PrefillQueries()) }))
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "worker_list_prefill_failures_total", Help: "Prefills given up (reading the generation, the SELECT or the encoding failed); the invalidation went on without them.",
	}, func() float64 { return float64(s.PrefillFailures()) }))
}

// Both queues read ahead; the workers take their messages in shares.
var (
	_ consumer.Buffering = (*redis.StreamConsumer)(nil)
	_ consumer.Buffering = (*redis.ChannelConsumer)(nil)
)
