// Package metrics holds the Prometheus collectors both servers register.
package metrics

import (
	"database/sql"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	goredis "github.com/redis/go-redis/v9"
)

// RegisterPools registers the connection-pool statistics of the MySQL pool
// (go_sql_* with db_name="techlist") and of the Redis client
// (redis_pool_*).
func RegisterPools(reg prometheus.Registerer, db *sql.DB, rdb goredis.UniversalClient) {
	reg.MustRegister(collectors.NewDBStatsCollector(db, "techlist"))
	gauge := func(name, help string, f func(*goredis.PoolStats) uint32) {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help},
			func() float64 { return float64(f(rdb.PoolStats())) }))
	}
	counter := func(name, help string, f func(*goredis.PoolStats) uint32) {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help},
			func() float64 { return float64(f(rdb.PoolStats())) }))
	}
	gauge("redis_pool_total_connections", "Connections in the Redis pool.", func(s *goredis.PoolStats) uint32 { return s.TotalConns })
	gauge("redis_pool_idle_connections", "Idle connections in the Redis pool.", func(s *goredis.PoolStats) uint32 { return s.IdleConns })
	counter("redis_pool_hits_total", "Times a free connection was found in the Redis pool.", func(s *goredis.PoolStats) uint32 { return s.Hits })
	counter("redis_pool_misses_total", "Times no free connection was in the Redis pool.", func(s *goredis.PoolStats) uint32 { return s.Misses })
	counter("redis_pool_timeouts_total", "Times waiting for a Redis connection timed out.", func(s *goredis.PoolStats) uint32 { return s.Timeouts })
}
