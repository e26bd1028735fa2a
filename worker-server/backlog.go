package main

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// backlogs is what streamBacklog reads: *redis.StreamConsumer.
type backlogs interface {
	Streams() []string
	Backlogs(ctx context.Context) ([]int64, error)
}

var backlogDesc = prometheus.NewDesc("worker_stream_backlog",
	"Entries in the stream partition not yet stored (unread or pending); -1 when Redis does not answer. "+
		"Every worker reports every stream: sum over partition of the max over workers is the whole backlog.",
	[]string{"partition"}, nil)

// streamBacklog is the gauge worker_stream_backlog{partition}, one series
// per stream the worker reads, named by the stream (the single stream
// REDIS_CHANNEL, or a partition's "{<channel>:p<n>…}"), read from Redis
// at each scrape; streams joined later appear from then on.
type streamBacklog struct{ consumer backlogs }

func (b streamBacklog) Describe(ch chan<- *prometheus.Desc) { ch <- backlogDesc }

func (b streamBacklog) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	streams := b.consumer.Streams()
	lens, err := b.consumer.Backlogs(ctx)
	for i, s := range streams {
		n := float64(-1)
		if err == nil && i < len(lens) {
			n = float64(lens[i])
		}
		ch <- prometheus.MustNewConstMetric(backlogDesc, prometheus.GaugeValue, n, s)
	}
}
