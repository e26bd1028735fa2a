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
)

// drainingSource is a Drainer over a list of messages that only arrive
// once Stop was called, as the messages Redis delivers between the
// consumer's UNSUBSCRIBE and its confirmation. After them, ErrDrained.
type drainingSource struct {
	fakeSource
	mu      sync.Mutex
	pending [][]byte
	stopped chan struct{}
	once    sync.Once
}

func (s *drainingSource) Stop() { s.once.Do(func() { close(s.stopped) }) }

func (s *drainingSource) Receive(ctx context.Context) (techlist.Delivery, error) {
	select {
	case <-ctx.Done():
		return techlist.Delivery{}, ctx.Err()
	case <-s.stopped:
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.pending) == 0 {
		return techlist.Delivery{}, techlist.ErrDrained
	}
	p := s.pending[0]
	s.pending = s.pending[1:]
	return techlist.Delivery{Payload: p, ID: string(p)}, nil
}

var _ Drainer = (*drainingSource)(nil)

// TestDrainerIsDrainedAfterStop: when Run's context ends, a Drainer is
// told to Stop, and what it hands out after that (read from the queue
// before the unsubscribe was confirmed) is stored before Run returns.
func TestDrainerIsDrainedAfterStop(t *testing.T) {
	src := &drainingSource{stopped: make(chan struct{})}
	want := []string{testID(1), testID(2), testID(3)}
	for _, id := range want {
		src.pending = append(src.pending, envelope(t, id, "Go", fixedNow))
	}
	store := &fakeStore{}
	cons := New(Config{Concurrency: 2, BatchSize: 2, BatchWait: time.Millisecond, DrainTimeout: wait}, Deps{
		Source: src, Analyse: instantAnalyse, Store: store, Cache: &fakeCache{}, Events: &fakeEvents{},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Metrics: NewMetrics(prometheus.NewRegistry()),
		Now: func() time.Time { return fixedNow },
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- cons.Run(ctx) }()
	cancel()
	runReturned(t, done)
	if got := sorted(ids(store.Rows())); !slices.Equal(got, want) {
		t.Errorf("stored %v, want everything the source handed out after Stop: %v", got, want)
	}
}

// runReturned waits for Run's result on done, which must be nil within
// wait.
func runReturned(t *testing.T, done <-chan error) {
	t.Helper()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run: got %v, want nil", err)
		}
	case <-time.After(wait):
		t.Fatalf("Run did not return within %s", wait)
	}
}
