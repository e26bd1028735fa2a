// Command api-server serves the JSON API: reads cache-aside through Redis
// over MySQL, writes validated and published to the worker through Redis.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	goredis "github.com/redis/go-redis/v9"
	"github.com/techlist/techlist/config"
	"github.com/techlist/techlist/metrics"
	"github.com/techlist/techlist/mysql"
	"github.com/techlist/techlist/redis"
	"github.com/techlist/techlist/service"
	"github.com/techlist/techlist/tracing"

	"github.com/techlist/api-server/internal/cacheaside"
	"github.com/techlist/api-server/internal/httpapi"
	"github.com/techlist/api-server/internal/live"
	"github.com/techlist/api-server/internal/stats"
)

func main() { service.Main("api-server", run) }

type settings struct {
	port            int
	mysql           mysql.Config
	replica         mysql.Config
	hasReplica      bool
	redis           redis.Config
	channel         string
	cachePrefix     string
	cacheTTL        time.Duration
	cacheJitter     float64
	refreshAfter    time.Duration
	queueMode       string
	localTTL        time.Duration
	localEntries    int
	listCachePages  int
	streamMaxLen    int64
	partitions      int
	pendingTTL      time.Duration
	publishBatch    int
	idempotencyTTL  time.Duration
	idemLease       time.Duration
	server          httpapi.Config
	startupTimeout  time.Duration
	shutdownTimeout time.Duration
	adminAddr       string
	maxConns        int
	tracing         *tracing.Tracing // from OTEL_*, set up by configure
}

func readSettings(env *config.Env) settings {
	s := settings{
		port:           env.Int("PORT", 5000, 0, 65535),
		mysql:          mysql.ConfigFromEnv(env),
		redis:          redis.ConfigFromEnv(env),
		channel:        env.String("REDIS_CHANNEL", "channel1"),
		cachePrefix:    env.String("REDIS_CACHE", "techlist"),
		cacheTTL:       env.PositiveDuration("CACHE_TTL", time.Minute),
		localTTL:       env.Duration("LOCAL_CACHE_TTL", time.Second),
		localEntries:   env.Int("LOCAL_CACHE_ENTRIES", 1000, 1, 1_000_000),
		listCachePages: env.Int("LIST_CACHE_PAGES", redis.DefaultMaxPages, 1, 1_000_000),
		queueMode:      env.Enum("QUEUE_MODE", "pubsub", "pubsub", "streams"),
		streamMaxLen:   int64(env.Int("STREAM_MAX_LEN", 1_000_000, 1, 1<<40)),
		partitions:     env.Int("STREAM_PARTITIONS", 1, 1, redis.MaxPartitions),
		idempotencyTTL: env.PositiveDuration("IDEMPOTENCY_TTL", 24*time.Hour),
		pendingTTL:     env.PositiveDuration("PENDING_TTL", time.Hour),
		publishBatch:   env.Int("PUBLISH_BATCH", 128, 1, 10_000),
		server: httpapi.Config{
			CORSOrigins:      env.List("CORS_ORIGINS", "http://localhost:3000"),
			MaxBodyBytes:     int64(env.Int("MAX_BODY_BYTES", 16<<10, 1<<10, 1<<20)),
			PublishRetry:     env.Duration("PUBLISH_RETRY", 5*time.Second),
			EventsMaxClients: env.Int("EVENTS_MAX_CLIENTS", 512, 1, 1_000_000),
			MaxInFlight:      env.Int("MAX_INFLIGHT", 256, 0, 1_000_000),
		},
		startupTimeout:  env.Duration("STARTUP_TIMEOUT", 60*time.Second),
		shutdownTimeout: env.Duration("SHUTDOWN_TIMEOUT", 10*time.Second),
		adminAddr:       service.AdminAddr(env),
		maxConns:        service.MaxConns(env),
	}
	s.replica, s.hasReplica = mysql.ReplicaConfigFromEnv(env, s.mysql)
	// Each cached entry lives a random 0–CACHE_TTL_JITTER part of CACHE_TTL
	// less, and a list page is refreshed in the background once it is
	// CACHE_REFRESH_AFTER old (4/5 of its life by default; 0 turns it off).
	s.cacheJitter = env.Float("CACHE_TTL_JITTER", redis.DefaultJitter, 0, 0.9)
	s.refreshAfter = env.Duration("CACHE_REFRESH_AFTER", s.cacheTTL*4/5)
	if s.refreshAfter >= s.cacheTTL {
		env.Fail("CACHE_REFRESH_AFTER", s.refreshAfter.String(), "want a duration shorter than CACHE_TTL ("+s.cacheTTL.String()+"), or 0 for no early refresh")
	}
	// POSTs a second per client IP; 0 is no limit. The burst defaults to
	// two seconds' worth (httpapi.Config).
	s.server.RateLimit = env.Float("RATE_LIMIT", 0, 0, 1_000_000)
	s.server.RateBurst = env.Int("RATE_BURST", 0, 1, 2_000_000)
	// The lease must outlast a POST's slowest answer: PUBLISH_RETRY plus
	// the last attempt and the calls around it (each bounded by the Redis
	// client's timeouts of a few seconds).
	s.idemLease = env.PositiveDuration("IDEMPOTENCY_LEASE", s.server.PublishRetry+5*time.Second)
	if s.idemLease <= s.server.PublishRetry {
		env.Fail("IDEMPOTENCY_LEASE", s.idemLease.String(), "want a duration longer than PUBLISH_RETRY ("+s.server.PublishRetry.String()+")")
	}
	service.StreamsFit(env, s.server.EventsMaxClients, s.maxConns)
	return s
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, logger, healthcheck, err := configure(ctx, args, getenv, stdout, stderr)
	if err != nil || healthcheck {
		return err
	}
	defer cfg.tracing.Flush(logger)
	// The drivers' own log lines go through logger too (JSON stays JSON).
	mysql.SetDriverLogger(logger)
	redis.SetDriverLogger(logger)
	store, replica, err := openMySQL(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer store.Close()
	if replica != nil {
		defer replica.Close()
	}
	rdb, err := openRedis(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer rdb.Close()

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics.RegisterPools(reg, store.DB(), rdb)
	apiMetrics := httpapi.NewMetrics(reg)
	cache := newCache(cfg, rdb)
	queue := publisher(cfg, rdb)
	pending := pendingMarks(queue, cache)
	// Concurrent POSTs share one pipeline per round trip; closed (what it
	// holds sent) before Redis is.
	pipe := redis.NewAutoPipeline(rdb, cfg.publishBatch)
	defer pipe.Close()
	cacheCounter := stats.NewCacheCounter(apiMetrics)
	statsSource := newStats(cfg, logger, rdb, store, stats.Waiting(queue, pending.Count), cacheCounter)
	reader := cacheaside.NewReader(cache, store, newLocal(cfg, reg), logger, cacheCounter)
	reg.MustRegister(cacheaside.QueriesCounter(reader))
	if replica != nil {
		reader.UseReplica(replica)
	}
	// Live updates: one subscription to the worker's events, relayed to
	// every GET /api/v1/events client; each event first drops what the
	// stored tech makes stale here.
	hub := live.NewHub(live.Redis(rdb, redis.EventsChannel(cfg.channel)), logger, live.Options{
		Watchers: []live.Watcher{cacheaside.NewInvalidator(reader, pending, logger), statsSource},
	})
	statsSource.SetLive(hub.Connected)
	reg.MustRegister(live.ClientsGauge(hub))
	defer live.Start(ctx, hub)() // stops with ctx, before Redis is closed

	modeChecks, stopWatch := watchQueueMode(ctx, cfg, rdb, logger)
	defer stopWatch()
	handler := httpapi.NewServer(cfg.server, httpapi.Deps{
		Logger:      logger,
		Reader:      reader,
		Publisher:   cfg.tracing.Publisher(redis.NewIntake(pipe, queue, pending, cfg.pendingTTL), cfg.channel),
		Pending:     pending,
		Idempotency: redis.NewIdempotency(rdb, cfg.cachePrefix, cfg.idempotencyTTL, cfg.idemLease),
		Checks: append([]service.Check{
			{Name: "redis", Ping: func(ctx context.Context) error { return redis.Ping(ctx, rdb) }}, {Name: "mysql", Ping: store.Ping},
		}, modeChecks...),
		Metrics:  apiMetrics,
		Gatherer: reg,
		NewID:    newID,
		Now:      func() time.Time { return time.Now().UTC() },
		Events:   hub,
		Stats:    statsSource,
	})
	logger.Info("starting", "queue_mode", cfg.queueMode, "channel", cfg.channel, "cache_prefix", cfg.cachePrefix,
		"mysql", cfg.mysql.Host+":"+strconv.Itoa(cfg.mysql.Port)+"/"+cfg.mysql.Database+"."+cfg.mysql.Table)
	return serve(ctx, cfg, cfg.tracing.Handler(handler, "api-server"), logger)
}

// openRedis returns the Redis client, traced when tracing is on. Redis not
// answering yet is no reason not to start: reads still work from MySQL,
// and writes answer 503 until Redis is back. The caller closes it.
func openRedis(ctx context.Context, cfg settings, logger *slog.Logger) (goredis.UniversalClient, error) {
	rdb := redis.NewClient(cfg.redis)
	if cfg.tracing.Enabled {
		if err := redis.Trace(rdb, cfg.tracing.ChildSpans()); err != nil {
			rdb.Close()
			return nil, err
		}
	}
	if err := redis.Ping(ctx, rdb); err != nil {
		logger.Warn("redis is not answering; reads bypass the cache until it does", "err", err)
	}
	return rdb, nil
}

// newStats returns the source of GET /api/v1/stats.
func newStats(cfg settings, logger *slog.Logger, rdb goredis.UniversalClient, store *mysql.Store, waiting func(context.Context) (int64, error), cache *stats.CacheCounter) *stats.Source {
	return stats.New(stats.Config{
		QueueMode: cfg.queueMode,
		Waiting:   waiting,
		Total:     stats.RowCounter(store.DB(), cfg.mysql.Table),
		Workers:   workerCounter(rdb, cfg.channel),
		Cache:     cache,
	}, logger)
}

// newCache returns the read cache as configured.
func newCache(cfg settings, rdb goredis.UniversalClient) *redis.Cache {
	cache := redis.NewCache(rdb, cfg.cachePrefix, cfg.cacheTTL)
	cache.SetMaxPages(cfg.listCachePages)
	cache.SetJitter(cfg.cacheJitter)
	cache.SetRefreshAfter(cfg.refreshAfter)
	return cache
}

// configure reads the flags and the environment. healthcheck is true when
// -healthcheck asked for a probe, which it has run, with err its outcome.
func configure(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) (cfg settings, logger *slog.Logger, healthcheck bool, err error) {
	flags := flag.NewFlagSet("api-server", flag.ContinueOnError)
	flags.SetOutput(stderr)
	probe := flags.Bool("healthcheck", false, "probe the running server's /healthz on PORT and exit")
	if err := flags.Parse(args); err != nil {
		return settings{}, nil, false, err
	}
	cfg, logger, tr, err := service.Configure(ctx, "api-server", getenv, stdout, readSettings)
	if err != nil {
		return settings{}, nil, false, err
	}
	cfg.tracing = tr
	if cfg.tracing.Enabled {
		cfg.mysql.Tracer, cfg.replica.Tracer = cfg.tracing.ChildSpans(), cfg.tracing.ChildSpans()
	}
	if *probe {
		return cfg, logger, true, service.HealthCheck(cfg.port)
	}
	return cfg, logger.With("service", "api-server"), false, nil
}

// openMySQL opens the primary, retrying while MySQL may still be starting
// (as when the whole stack comes up at once), and the replica when one is
// configured (else replica is nil).
func openMySQL(ctx context.Context, cfg settings, logger *slog.Logger) (store, replica *mysql.Store, err error) {
	err = service.Retry(ctx, logger, "mysql", cfg.startupTimeout, func(ctx context.Context) (err error) {
		store, err = mysql.OpenStore(ctx, cfg.mysql)
		return err
	})
	if err != nil || !cfg.hasReplica {
		return store, nil, err
	}
	db, err := mysql.OpenReplica(cfg.replica)
	if err != nil {
		store.Close()
		return nil, nil, err
	}
	logger.Info("reading from a MySQL replica where its lag is harmless", "replica", cfg.replica.Host+":"+strconv.Itoa(cfg.replica.Port))
	return store, mysql.NewStore(db, cfg.replica.Table), nil
}

// newLocal returns the in-process tier of list pages, registering its
// counter, or nil when LOCAL_CACHE_TTL is 0.
func newLocal(cfg settings, reg prometheus.Registerer) *cacheaside.Local {
	if cfg.localTTL <= 0 {
		return nil
	}
	local := cacheaside.NewLocal(cfg.localTTL, cfg.localEntries)
	reg.MustRegister(cacheaside.HitsCounter(local))
	return local
}

// serve serves handler on PORT, and pprof on ADMIN_ADDR when set, until
// ctx ends; then it shuts down within SHUTDOWN_TIMEOUT.
func serve(ctx context.Context, cfg settings, handler http.Handler, logger *slog.Logger) error {
	srv := service.NewHTTPServer(":"+strconv.Itoa(cfg.port), handler, logger)
	return service.ListenAndServe(ctx, srv, cfg.adminAddr, cfg.maxConns, logger, cfg.shutdownTimeout)
}

// publisher returns the queue of the configured mode: the pub/sub channel,
// or the stream of the same name, or its STREAM_PARTITIONS partitions.
func publisher(cfg settings, rdb goredis.UniversalClient) redis.IntakeQueue {
	if cfg.queueMode == "streams" {
		return redis.NewPartitionedPublisher(rdb, cfg.channel, cfg.partitions, cfg.streamMaxLen, redis.MarkerTTL(cfg.server.PublishRetry))
	}
	return redis.NewPublisher(rdb, cfg.channel)
}

// watchQueueMode, in streams mode, watches whether only pub/sub workers
// are live, which would never store what is accepted: an error is logged
// when it starts and /readyz fails on check queue_mode while it lasts.
// POSTs are still accepted: the stream keeps them for a streams worker.
func watchQueueMode(ctx context.Context, cfg settings, rdb goredis.UniversalClient, logger *slog.Logger) ([]service.Check, func()) {
	if cfg.queueMode != "streams" {
		return nil, func() {}
	}
	watch := service.NewWatch("queue_mode", func(ctx context.Context) (string, error) {
		return redis.StreamsModeProblem(ctx, rdb, cfg.channel)
	}, logger)
	return []service.Check{{Name: "queue_mode", Ping: watch.Ping, Explain: true}}, watch.Start(ctx, 10*time.Second)
}

// workerCounter counts the live workers on channel by queue mode.
func workerCounter(rdb goredis.UniversalClient, channel string) func(context.Context) (stats.Workers, error) {
	return func(ctx context.Context) (stats.Workers, error) {
		n, err := redis.CountWorkers(ctx, rdb, channel)
		return stats.Workers{PubSub: n.PubSub, Streams: n.Streams}, err
	}
}

// newID makes a UUIDv7: time-ordered, so the primary key orders by
// submission and inserts append to the index.
func newID() (string, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return "", fmt.Errorf("make id: %w", err)
	}
	return id.String(), nil
}

// pendingMarks returns the pending marks with their index, which counts
// the techs waiting for a pub/sub worker, or without it when the queue
// counts its own backlog (a stream's length, summed over its partitions):
// there nothing reads the index.
func pendingMarks(queue any, cache *redis.Cache) *redis.PendingIndex {
	if _, ok := queue.(stats.Backlogger); ok {
		return redis.NewPendingMarks(cache)
	}
	return redis.NewPendingIndex(cache)
}
