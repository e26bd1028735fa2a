package consumer

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the consumer's Prometheus metrics.
type Metrics struct {
	received  prometheus.Counter
	rejected  prometheus.Counter
	stored    prometheus.Counter
	failed    prometheus.Counter
	batchSize prometheus.Histogram
	lag       prometheus.Histogram
}

// NewMetrics registers the metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	messages := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "worker_messages_total",
		Help: "Messages by result: received, rejected (malformed), stored, failed.",
	}, []string{"result"})
	m := &Metrics{
		received: messages.WithLabelValues("received"),
		rejected: messages.WithLabelValues("rejected"),
		stored:   messages.WithLabelValues("stored"),
		failed:   messages.WithLabelValues("failed"),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "worker_batch_rows", Help: "Rows per committed batch.",
			Buckets: []float64{1, 2, 5, 10, 20, 50, 100, 200, 500, 1000},
		}),
		lag: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "worker_end_to_end_lag_seconds", Help: "From the api-server accepting a tech to its row being committed.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 12),
		}),
	}
	reg.MustRegister(messages, m.batchSize, m.lag)
	return m
}
