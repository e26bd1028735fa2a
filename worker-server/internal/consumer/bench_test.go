package consumer

import (
	"context"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/techlist/techlist"
)

// sliceSource hands out its deliveries, then blocks until ctx ends: a
// backlog already read, as a stream consumer's buffer (a Buffering).
type sliceSource struct {
	fakeSource
	ds []techlist.Delivery
}

func (s *sliceSource) Receive(ctx context.Context) (techlist.Delivery, error) {
	if len(s.ds) == 0 {
		<-ctx.Done()
		return techlist.Delivery{}, ctx.Err()
	}
	d := s.ds[0]
	s.ds = s.ds[1:]
	return d, nil
}

func (s *sliceSource) Buffered() int { return len(s.ds) }

func (s *sliceSource) ReceiveBuffered(ds []techlist.Delivery, n int) []techlist.Delivery {
	n = min(n, len(s.ds))
	ds = append(ds, s.ds[:n]...)
	s.ds = s.ds[n:]
	return ds
}

// countingSettler counts the settled rows and closes done at want.
type countingSettler struct {
	settled atomic.Int64
	want    int64
	done    chan struct{}
}

func (s *countingSettler) Settle(ctx context.Context, ds []techlist.Delivery, ids []string, events []techlist.Event) error {
	if s.settled.Add(int64(len(ds))) == s.want {
		close(s.done)
	}
	return nil
}

type nopStore struct{}

func (nopStore) Insert(ctx context.Context, techs []techlist.Tech) ([]techlist.Tech, error) {
	return techs, nil
}

// BenchmarkDrain is the consumer's own cost per row when draining a
// backlog with an instant task, a store and a settler that do nothing:
// what the worker spends besides Redis and MySQL (see bench -only drain).
func BenchmarkDrain(b *testing.B) {
	payloads := make([][]byte, 1000)
	for i := range payloads {
		p, err := techlist.NewEnvelope(testID(i), "backlog tech", time.Now()).Encode()
		if err != nil {
			b.Fatal(err)
		}
		payloads[i] = p
	}
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		src := &sliceSource{ds: make([]techlist.Delivery, 100_000)}
		for i := range src.ds {
			src.ds[i] = techlist.Delivery{Payload: payloads[i%len(payloads)], ID: testID(i), Deliveries: 1}
		}
		settler := &countingSettler{want: int64(len(src.ds)), done: make(chan struct{})}
		cons := New(Config{Concurrency: 64, BatchSize: 500, BatchWait: 5 * time.Millisecond, Flushers: 4, DrainTimeout: wait}, Deps{
			Source: src, Analyse: instantAnalyse, Store: nopStore{}, Settler: settler,
			Logger: slog.New(slog.NewJSONHandler(io.Discard, nil)), Metrics: NewMetrics(prometheus.NewRegistry()), Now: time.Now,
		})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		b.StartTimer()
		go func() { done <- cons.Run(ctx) }()
		<-settler.done
		b.StopTimer()
		cancel()
		<-done
		b.StartTimer()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*100_000), "ns/row")
}
