package httpapi

import (
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/techlist/api-server/internal/cacheaside"
)

// Metrics are the api-server's Prometheus metrics.
type Metrics struct {
	// series holds each request series once looked up (a seriesKey to a
	// requestSeries): WithLabelValues hashes the labels on every call.
	series    sync.Map
	requests  *prometheus.CounterVec
	latency   *prometheus.HistogramVec
	cache     *prometheus.CounterVec
	publishes *prometheus.CounterVec
}

// NewMetrics registers the metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "api_http_requests_total", Help: "HTTP requests by method, route and status.",
		}, []string{"method", "route", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "api_http_request_duration_seconds", Help: "HTTP request latency by method and route.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"method", "route"}),
		cache: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "api_cache_reads_total", Help: "Cache-aside reads by kind (list, tech) and result (HIT, MISS, BYPASS).",
		}, []string{"kind", "result"}),
		publishes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "api_publishes_total", Help: "Envelopes published to the worker, by result (ok, failed).",
		}, []string{"result"}),
	}
	reg.MustRegister(m.requests, m.latency, m.cache, m.publishes)
	return m
}

func (m *Metrics) request(method, route string, status int, d time.Duration) {
	key := seriesKey{method, route, status}
	s, ok := m.series.Load(key)
	if !ok {
		s, _ = m.series.LoadOrStore(key, requestSeries{
			count:   m.requests.WithLabelValues(method, route, strconv.Itoa(status)),
			latency: m.latency.WithLabelValues(method, route),
		})
	}
	rs := s.(requestSeries)
	rs.count.Inc()
	rs.latency.Observe(d.Seconds())
}

// seriesKey names a request's series. The labels come from the router's
// patterns, the standard methods and the status codes the server writes,
// so the map stays as small as the series themselves.
type seriesKey struct {
	method, route string
	status        int
}

type requestSeries struct {
	count   prometheus.Counter
	latency prometheus.Observer
}

// CacheResult counts one cache-aside read.
func (m *Metrics) CacheResult(kind string, s cacheaside.Status) {
	m.cache.WithLabelValues(kind, string(s)).Inc()
}

func (m *Metrics) published()     { m.publishes.WithLabelValues("ok").Inc() }
func (m *Metrics) publishFailed() { m.publishes.WithLabelValues("failed").Inc() }
