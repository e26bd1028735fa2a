package consumer

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/techlist/techlist"
	"github.com/techlist/techlist/testenv"
)

// fakeSettler records each Settle with how many rows the store had
// committed when it was called.
type fakeSettler struct {
	store *fakeStore

	mu    sync.Mutex
	calls []settled
}

type settled struct {
	deliveries, ids, events []string
	committed               int // rows in the store when Settle was called
}

func (s *fakeSettler) Settle(ctx context.Context, ds []techlist.Delivery, ids []string, events []techlist.Event) error {
	c := settled{ids: slices.Clone(ids), committed: len(s.store.Rows())}
	for _, d := range ds {
		c.deliveries = append(c.deliveries, d.ID)
	}
	for _, ev := range events {
		c.events = append(c.events, ev.Tech.ID)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, c)
	return nil
}

func (s *fakeSettler) snapshot() []settled {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

// withSettler makes h's consumer settle through a fakeSettler.
func withSettler(h *harness) *fakeSettler {
	s := &fakeSettler{store: h.store}
	h.cons.settler = s
	return s
}

// With a Settler, a batch is settled in one call, only after its commit,
// and Source.Ack, Cache and Events are not used.
func TestSettlerSettlesOnlyCommittedBatches(t *testing.T) {
	store := &fakeStore{failFirst: 2}
	h := newHarness(t, Config{Concurrency: 4, BatchSize: 3, BatchWait: time.Hour, DrainTimeout: wait}, nil, store)
	settler := withSettler(h)
	h.start(t)
	want := []string{testID(1), testID(2), testID(3)}
	var payloads []string
	for _, id := range want {
		p := envelope(t, id, "Go "+id, fixedNow)
		payloads = append(payloads, string(p))
		h.src.send(t, p)
	}
	testenv.Eventually(t, "the batch to be settled", func() bool { return len(settler.snapshot()) == 1 })
	if err := h.stop(t); err != nil {
		t.Fatalf("Run: got %v, want nil", err)
	}
	calls := settler.snapshot()
	if len(calls) != 1 {
		t.Fatalf("got %d Settle calls, want 1", len(calls))
	}
	c := calls[0]
	if c.committed != 3 || store.Calls() != 3 {
		t.Errorf("Settle saw %d committed rows after %d Insert calls, want 3 after 3 (two failures, then the commit)", c.committed, store.Calls())
	}
	if !slices.Equal(sorted(c.ids), want) || !slices.Equal(sorted(c.events), want) || !slices.Equal(sorted(c.deliveries), sorted(payloads)) {
		t.Errorf("Settle got ids %v, events %v, deliveries %q; want the batch's", c.ids, c.events, c.deliveries)
	}
	if acked, _, _ := h.src.told(); len(acked) != 0 {
		t.Errorf("Source.Ack acknowledged %q beside the Settler, want nothing", acked)
	}
	if invalidations, cleared := h.cache.snapshot(); invalidations != 0 || len(cleared) != 0 || len(h.events.Published()) != 0 {
		t.Errorf("Cache and Events used beside the Settler: %d invalidations, %v cleared, %d announced", invalidations, cleared, len(h.events.Published()))
	}
}

// A batch never committed is never settled: its messages are failed.
func TestSettlerNeverSettlesAnUncommittedBatch(t *testing.T) {
	store := &fakeStore{failFirst: 1 << 30}
	h := newHarness(t, Config{Concurrency: 2, BatchSize: 1, BatchWait: time.Hour, DrainTimeout: 50 * time.Millisecond}, nil, store)
	settler := withSettler(h)
	h.start(t)
	payload := envelope(t, testID(1), "Go", fixedNow)
	h.src.send(t, payload)
	testenv.Eventually(t, "a failed insert", func() bool { return store.Calls() > 0 })
	if err := h.stop(t); err == nil {
		t.Error("Run: got nil, want the drain's error")
	}
	if calls := settler.snapshot(); len(calls) != 0 {
		t.Errorf("got Settle calls %+v for a batch never stored, want none", calls)
	}
	if _, failed, _ := h.src.told(); !slices.Equal(failed, []string{string(payload)}) {
		t.Errorf("got failed %q, want the unstored message failed", failed)
	}
}
