package metrics_test

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/techlist/techlist/metrics"
	"github.com/techlist/techlist/testenv"
)

func TestRegisterPools(t *testing.T) {
	_, db := testenv.MySQL(t)
	rdb, _ := testenv.Redis(t)
	reg := prometheus.NewRegistry()
	metrics.RegisterPools(reg, db.DB, rdb)
	n, err := testutil.GatherAndCount(reg, "go_sql_open_connections", "redis_pool_total_connections", "redis_pool_timeouts_total")
	if err != nil || n != 3 {
		t.Fatalf("got %d series, %v; want 3", n, err)
	}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP redis_pool_timeouts_total Times waiting for a Redis connection timed out.
# TYPE redis_pool_timeouts_total counter
redis_pool_timeouts_total 0
`), "redis_pool_timeouts_total"); err != nil {
		t.Error(err)
	}
}
