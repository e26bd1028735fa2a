package cacheaside

import "github.com/prometheus/client_golang/prometheus"

// QueriesCounter is a Prometheus counter of the list queries r sent to
// MySQL: on misses, refreshes and bypasses.
func QueriesCounter(r *Reader) prometheus.Collector {
	return prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "api_cache_list_queries_total", Help: "List queries sent to MySQL (misses, background refreshes, bypasses).",
	}, func() float64 { return float64(r.ListQueries()) })
}
