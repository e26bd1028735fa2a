package consumer

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/techlist/techlist"
	"github.com/techlist/techlist/testenv"
)

// bufferedSource is a Buffering source holding a read of deliveries, as a
// stream consumer after an XREADGROUP; once they are handed out, Receive
// blocks until ctx ends.
type bufferedSource struct {
	fakeSource
	mu sync.Mutex
	ds []techlist.Delivery
}

func (s *bufferedSource) Receive(ctx context.Context) (techlist.Delivery, error) {
	s.mu.Lock()
	if len(s.ds) > 0 {
		d := s.ds[0]
		s.ds = s.ds[1:]
		s.mu.Unlock()
		return d, nil
	}
	s.mu.Unlock()
	<-ctx.Done()
	return techlist.Delivery{}, ctx.Err()
}

func (s *bufferedSource) Buffered() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.ds)
}

func (s *bufferedSource) ReceiveBuffered(ds []techlist.Delivery, n int) []techlist.Delivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	n = min(n, len(s.ds))
	ds = append(ds, s.ds[:n]...)
	s.ds = s.ds[n:]
	return ds
}

var _ Buffering = (*bufferedSource)(nil)

// TestWorkersShareABufferedRead: the messages a source read ahead are
// shared out among the workers, so with slow tasks every worker runs one
// (none takes the whole read and runs it alone), and every message is
// stored once.
func TestWorkersShareABufferedRead(t *testing.T) {
	const concurrency, total = 4, 10
	src := &bufferedSource{}
	var want []string
	for i := range total {
		p := envelope(t, testID(i), "Go", fixedNow)
		src.ds = append(src.ds, techlist.Delivery{Payload: p, ID: string(p), Deliveries: 1})
		want = append(want, testID(i))
	}
	task := newBlockingTask()
	store := &fakeStore{}
	cons := New(Config{Concurrency: concurrency, BatchSize: total, BatchWait: time.Hour, DrainTimeout: wait}, Deps{
		Source: src, Analyse: task.analyse, Store: store, Cache: &fakeCache{}, Events: &fakeEvents{},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Metrics: NewMetrics(prometheus.NewRegistry()),
		Now: func() time.Time { return fixedNow },
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- cons.Run(ctx) }()
	testenv.Eventually(t, "every worker running a task", func() bool { return task.inFlight.Load() == concurrency })
	close(task.release)
	testenv.Eventually(t, "every row stored", func() bool { return len(store.Rows()) == total })
	cancel()
	runReturned(t, done)
	if got := sorted(ids(store.Rows())); !slices.Equal(got, want) {
		t.Errorf("stored %v, want each of %v once", got, want)
	}
	if got := task.max.Load(); got != concurrency {
		t.Errorf("got at most %d tasks at once, want %d", got, concurrency)
	}
}
