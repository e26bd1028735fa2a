package consumer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/techlist/techlist"
	"github.com/techlist/techlist/testenv"
)

// wait bounds every wait in these tests: long enough for a loaded CI
// machine, short enough that a hang fails instead of stalling the run.
const wait = 10 * time.Second

// fixedNow is the injected clock; it has nanoseconds so the test sees the
// truncation to the microsecond MySQL keeps.
var fixedNow = time.Date(2024, 5, 1, 12, 30, 0, 123456789, time.UTC)

// fakeSource hands out what the test feeds it, one item per Receive, and
// records what the consumer tells it became of each delivery. Each
// delivery's ID is its payload, so the records read plainly.
type fakeSource struct {
	items chan sourceItem

	mu       sync.Mutex
	acked    [][]string // one entry per Ack call
	failed   []string
	rejected []string
}

type sourceItem struct {
	payload []byte
	err     error
}

func newFakeSource() *fakeSource { return &fakeSource{items: make(chan sourceItem)} }

func (s *fakeSource) Receive(ctx context.Context) (techlist.Delivery, error) {
	select {
	case <-ctx.Done():
		return techlist.Delivery{}, ctx.Err()
	case it := <-s.items:
		if it.err != nil {
			return techlist.Delivery{}, it.err
		}
		return techlist.Delivery{Payload: it.payload, ID: string(it.payload), Deliveries: 1}, nil
	}
}

func (s *fakeSource) Ack(ctx context.Context, ds ...techlist.Delivery) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ids []string
	for _, d := range ds {
		ids = append(ids, d.ID)
	}
	s.acked = append(s.acked, ids)
	return nil
}

func (s *fakeSource) Fail(ctx context.Context, d techlist.Delivery, reason error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failed = append(s.failed, d.ID)
	return nil
}

func (s *fakeSource) Reject(ctx context.Context, d techlist.Delivery, reason error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rejected = append(s.rejected, d.ID)
	return nil
}

// ackCalls returns how many times Ack was called.
func (s *fakeSource) ackCalls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.acked)
}

// told returns the payloads acknowledged (all Ack calls together), failed
// and rejected so far.
func (s *fakeSource) told() (acked, failed, rejected []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ids := range s.acked {
		acked = append(acked, ids...)
	}
	return acked, slices.Clone(s.failed), slices.Clone(s.rejected)
}

// send blocks until the consumer has taken payload off the source.
func (s *fakeSource) send(t *testing.T, payload []byte) {
	t.Helper()
	s.feed(t, sourceItem{payload: payload})
}

// fail makes the next Receive return err.
func (s *fakeSource) fail(t *testing.T, err error) {
	t.Helper()
	s.feed(t, sourceItem{err: err})
}

func (s *fakeSource) feed(t *testing.T, it sourceItem) {
	t.Helper()
	select {
	case s.items <- it:
	case <-time.After(wait):
		t.Fatalf("the consumer did not receive within %s", wait)
	}
}

// fakeStore records the batches it committed; its first failFirst calls fail.
type fakeStore struct {
	mu        sync.Mutex
	failFirst int
	calls     int
	batches   [][]techlist.Tech
}

var errStoreDown = errors.New("store is down")

func (s *fakeStore) Insert(ctx context.Context, techs []techlist.Tech) ([]techlist.Tech, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if s.calls <= s.failFirst {
		return nil, errStoreDown
	}
	stored := slices.Clone(techs)
	s.batches = append(s.batches, stored)
	return slices.Clone(stored), nil
}

func (s *fakeStore) Batches() [][]techlist.Tech {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.batches)
}

func (s *fakeStore) Calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

// Rows returns every committed row, in commit order.
func (s *fakeStore) Rows() []techlist.Tech {
	var rows []techlist.Tech
	for _, b := range s.Batches() {
		rows = append(rows, b...)
	}
	return rows
}

type fakeCache struct {
	mu            sync.Mutex
	invalidations int
	cleared       [][]string
}

func (c *fakeCache) InvalidateLists(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.invalidations++
	return nil
}

func (c *fakeCache) ClearPending(ctx context.Context, ids ...string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cleared = append(c.cleared, slices.Clone(ids))
	return nil
}

func (c *fakeCache) snapshot() (int, [][]string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.invalidations, slices.Clone(c.cleared)
}

type fakeEvents struct {
	mu        sync.Mutex
	published [][]techlist.Tech
}

func (e *fakeEvents) Announce(ctx context.Context, events []techlist.Event) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	techs := make([]techlist.Tech, len(events))
	for i, ev := range events {
		techs[i] = ev.Tech
	}
	e.published = append(e.published, techs)
	return nil
}

func (e *fakeEvents) Published() [][]techlist.Tech {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.published)
}

// harness is a Consumer over fakes, run in a goroutine.
type harness struct {
	src    *fakeSource
	store  *fakeStore
	cache  *fakeCache
	events *fakeEvents
	reg    *prometheus.Registry
	cons   *Consumer

	cancel context.CancelFunc
	done   chan error
}

// priorityOf is the fake task: a priority the test can predict from the text.
func priorityOf(text string) techlist.Priority {
	switch {
	case strings.HasPrefix(text, "high"):
		return techlist.PriorityHigh
	case strings.HasPrefix(text, "low"):
		return techlist.PriorityLow
	}
	return techlist.PriorityMedium
}

func instantAnalyse(ctx context.Context, text string) (techlist.Priority, error) {
	return priorityOf(text), nil
}

func newHarness(t *testing.T, cfg Config, analyse Analyse, store *fakeStore) *harness {
	t.Helper()
	if analyse == nil {
		analyse = instantAnalyse
	}
	if store == nil {
		store = &fakeStore{}
	}
	h := &harness{
		src:    newFakeSource(),
		store:  store,
		cache:  &fakeCache{},
		events: &fakeEvents{},
		reg:    prometheus.NewRegistry(),
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	h.cons = New(cfg, Deps{
		Source: h.src, Analyse: analyse, Store: h.store, Cache: h.cache, Events: h.events,
		Logger: logger, Metrics: NewMetrics(h.reg), Now: func() time.Time { return fixedNow },
	})
	return h
}

// start runs the consumer until stop is called or the test ends.
func (h *harness) start(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	h.done = make(chan error, 1)
	go func() { h.done <- h.cons.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-h.done:
		case <-time.After(wait):
			t.Errorf("Run did not return within %s of the test's end", wait)
		}
	})
}

// stop cancels Run's context and returns what Run returned.
func (h *harness) stop(t *testing.T) error {
	t.Helper()
	h.cancel()
	select {
	case err := <-h.done:
		h.done <- err // for the cleanup
		return err
	case <-time.After(wait):
		t.Fatalf("Run did not return within %s of its context ending", wait)
		return nil
	}
}

func testID(i int) string { return fmt.Sprintf("01890a5d-ac96-774b-bcce-%012x", i) }

func envelope(t *testing.T, id, text string, submittedAt time.Time) []byte {
	t.Helper()
	b, err := techlist.NewEnvelope(id, text, submittedAt).Encode()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// messages returns the value of worker_messages_total{result=result}.
func messages(t *testing.T, reg *prometheus.Registry, result string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather metrics: %v", err)
	}
	for _, f := range families {
		if f.GetName() != "worker_messages_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "result" && l.GetValue() == result {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

func ids(techs []techlist.Tech) []string {
	out := make([]string, len(techs))
	for i, t := range techs {
		out[i] = t.ID
	}
	return out
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

func batchSizes(batches [][]techlist.Tech) []int {
	out := make([]int, len(batches))
	for i, b := range batches {
		out[i] = len(b)
	}
	return out
}

func TestStoresValidEnvelopes(t *testing.T) {
	h := newHarness(t, Config{Concurrency: 4, BatchSize: 3, BatchWait: time.Hour, DrainTimeout: wait}, nil, nil)
	h.start(t)

	// Submitted in another zone, with nanoseconds: stored as the same
	// instant, in UTC.
	zone := time.FixedZone("UTC+2", 2*60*60)
	submitted := time.Date(2024, 5, 1, 14, 29, 59, 987654321, zone)
	texts := map[string]string{testID(1): "high: patch it", testID(2): "low: a typo", testID(3): "Go"}
	var payloads []string
	for _, id := range slices.Sorted(maps.Keys(texts)) {
		// NewEnvelope would convert to UTC; write the offset on the wire.
		payload := fmt.Sprintf(`{"v":1,"id":%q,"text":%q,"submitted_at":%q}`, id, texts[id], submitted.Format(time.RFC3339Nano))
		payloads = append(payloads, payload)
		h.src.send(t, []byte(payload))
	}
	testenv.Eventually(t, "the batch's event", func() bool { return len(h.events.Published()) == 1 })

	batches := h.store.Batches()
	if got := batchSizes(batches); !slices.Equal(got, []int{3}) {
		t.Fatalf("got batches of %v rows, want [3]", got)
	}
	wantCreated := fixedNow.Truncate(time.Microsecond)
	for _, row := range batches[0] {
		text, ok := texts[row.ID]
		if !ok {
			t.Errorf("stored unknown id %s", row.ID)
			continue
		}
		if row.Text != text {
			t.Errorf("%s: got text %q, want %q", row.ID, row.Text, text)
		}
		if want := priorityOf(text); row.Priority != want {
			t.Errorf("%s: got priority %s, want %s", row.ID, row.Priority, want)
		}
		if !row.SubmittedAt.Equal(submitted) || row.SubmittedAt.Location() != time.UTC {
			t.Errorf("%s: got submitted_at %v, want %v in UTC", row.ID, row.SubmittedAt, submitted.UTC())
		}
		if !row.CreatedAt.Equal(wantCreated) {
			t.Errorf("%s: got created_at %v, want %v (now, to the microsecond)", row.ID, row.CreatedAt, wantCreated)
		}
	}

	invalidations, cleared := h.cache.snapshot()
	if invalidations != 1 {
		t.Errorf("got %d list invalidations, want 1 (one per batch)", invalidations)
	}
	if len(cleared) != 1 || !slices.Equal(sorted(cleared[0]), slices.Sorted(maps.Keys(texts))) {
		t.Errorf("got pending marks cleared %v, want one call with %v", cleared, slices.Sorted(maps.Keys(texts)))
	}
	if pub := h.events.Published(); !slices.EqualFunc(pub[0], batches[0], techEqual) {
		t.Errorf("got events for %v, want the stored rows %v", pub[0], batches[0])
	}
	acked, failed, rejected := h.src.told()
	if !slices.Equal(sorted(acked), sorted(payloads)) || len(failed) > 0 || len(rejected) > 0 {
		t.Errorf("got acked %q, failed %q, rejected %q; want every delivery acked after the commit", acked, failed, rejected)
	}
	if got := h.src.ackCalls(); got != 1 {
		t.Errorf("got %d Ack calls, want 1 (one per batch)", got)
	}

	if err := h.stop(t); err != nil {
		t.Errorf("Run: got %v, want nil", err)
	}
	for _, tt := range []struct {
		result string
		want   float64
	}{{"received", 3}, {"stored", 3}, {"rejected", 0}, {"failed", 0}} {
		if got := messages(t, h.reg, tt.result); got != tt.want {
			t.Errorf("worker_messages_total{result=%q}: got %v, want %v", tt.result, got, tt.want)
		}
	}
}

func techEqual(a, b techlist.Tech) bool {
	return a.ID == b.ID && a.Text == b.Text && a.Priority == b.Priority &&
		a.SubmittedAt.Equal(b.SubmittedAt) && a.CreatedAt.Equal(b.CreatedAt)
}

func TestBatchesBySize(t *testing.T) {
	h := newHarness(t, Config{Concurrency: 25, BatchSize: 10, BatchWait: time.Hour, DrainTimeout: wait}, nil, nil)
	h.start(t)
	var want []string
	for i := range 25 {
		want = append(want, testID(i))
		h.src.send(t, envelope(t, testID(i), fmt.Sprintf("tech %d", i), fixedNow))
	}
	testenv.Eventually(t, "two full batches", func() bool { return len(h.store.Batches()) == 2 })
	// The last 5 never fill a batch, and the timer waits an hour: they are
	// flushed at shutdown.
	if err := h.stop(t); err != nil {
		t.Fatalf("Run: got %v, want nil", err)
	}
	batches := h.store.Batches()
	if got := batchSizes(batches); !slices.Equal(got, []int{10, 10, 5}) {
		t.Errorf("got batches of %v rows, want [10 10 5]", got)
	}
	if got := sorted(ids(h.store.Rows())); !slices.Equal(got, want) {
		t.Errorf("got ids %v, want %v", got, want)
	}
	if invalidations, cleared := h.cache.snapshot(); invalidations != 3 || len(cleared) != 3 {
		t.Errorf("got %d invalidations and %d ClearPending calls, want 3 each (one per batch)", invalidations, len(cleared))
	}
	if got := len(h.events.Published()); got != 3 {
		t.Errorf("got %d Announce calls, want 3", got)
	}
}

func TestBatchWaitFlushesAPartialBatch(t *testing.T) {
	h := newHarness(t, Config{Concurrency: 4, BatchSize: 100, BatchWait: 5 * time.Millisecond, DrainTimeout: wait}, nil, nil)
	h.start(t)
	h.src.send(t, envelope(t, testID(1), "Go", fixedNow))
	// No more messages and no shutdown: only the timer can flush it.
	testenv.Eventually(t, "the lone row to be stored", func() bool { return len(h.store.Batches()) == 1 })
	if got := batchSizes(h.store.Batches()); !slices.Equal(got, []int{1}) {
		t.Errorf("got batches of %v rows, want [1]", got)
	}
	if err := h.stop(t); err != nil {
		t.Errorf("Run: got %v, want nil", err)
	}
}

func TestRejectsMalformedMessages(t *testing.T) {
	tests := []struct {
		name    string
		payload string
	}{
		{"not JSON", `hello`},
		{"truncated JSON", `{"v":1,"id":"01890a5d-ac96-774b-bcce-b302099a8057"`},
		{"wrong version", `{"v":2,"id":"01890a5d-ac96-774b-bcce-b302099a8057","text":"Go","submitted_at":"2024-05-01T12:00:00Z"}`},
		{"missing version", `{"id":"01890a5d-ac96-774b-bcce-b302099a8057","text":"Go","submitted_at":"2024-05-01T12:00:00Z"}`},
		{"bad id", `{"v":1,"id":"1; DROP TABLE techlist","text":"Go","submitted_at":"2024-05-01T12:00:00Z"}`},
		{"uppercase id", `{"v":1,"id":"01890A5D-AC96-774B-BCCE-B302099A8057","text":"Go","submitted_at":"2024-05-01T12:00:00Z"}`},
		{"control chars in text", `{"v":1,"id":"01890a5d-ac96-774b-bcce-b302099a8057","text":"Go\u0000Rust","submitted_at":"2024-05-01T12:00:00Z"}`},
		{"newline in text", `{"v":1,"id":"01890a5d-ac96-774b-bcce-b302099a8057","text":"Go\nRust","submitted_at":"2024-05-01T12:00:00Z"}`},
		{"empty text", `{"v":1,"id":"01890a5d-ac96-774b-bcce-b302099a8057","text":"","submitted_at":"2024-05-01T12:00:00Z"}`},
		{"blank text", `{"v":1,"id":"01890a5d-ac96-774b-bcce-b302099a8057","text":"   ","submitted_at":"2024-05-01T12:00:00Z"}`},
		{"text too long", `{"v":1,"id":"01890a5d-ac96-774b-bcce-b302099a8057","text":"` + strings.Repeat("x", 201) + `","submitted_at":"2024-05-01T12:00:00Z"}`},
		{"bad time", `{"v":1,"id":"01890a5d-ac96-774b-bcce-b302099a8057","text":"Go","submitted_at":"yesterday","admin":true}`},
		{"missing submitted_at", `{"v":1,"id":"01890a5d-ac96-774b-bcce-b302099a8057","text":"Go"}`},
		{"trailing data", `{"v":1,"id":"01890a5d-ac96-774b-bcce-b302099a8057","text":"Go","submitted_at":"2024-05-01T12:00:00Z"} {}`},
		{"empty", ``},
		// Well-formed, but not what the api-server makes.
		{"nil id", `{"v":1,"id":"00000000-0000-0000-0000-000000000000","text":"Go","submitted_at":"2024-05-01T12:00:00Z"}`},
		{"v4 id", `{"v":1,"id":"9b2f4c1e-7d3a-4e5b-9c8d-0a1b2c3d4e5f","text":"Go","submitted_at":"2024-05-01T12:00:00Z"}`},
		{"submitted in 2099", `{"v":1,"id":"01890a5d-ac96-774b-bcce-b302099a8057","text":"Go","submitted_at":"2099-01-01T00:00:00Z"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, Config{Concurrency: 2, BatchSize: 1, BatchWait: time.Millisecond, DrainTimeout: wait}, nil, nil)
			h.start(t)
			h.src.send(t, []byte(tt.payload))
			// The consumer keeps going: a valid message after it is stored.
			valid := testID(42)
			h.src.send(t, envelope(t, valid, "Go", fixedNow))
			testenv.Eventually(t, "the valid message to be stored", func() bool { return len(h.store.Rows()) > 0 })
			if err := h.stop(t); err != nil {
				t.Errorf("Run: got %v, want nil", err)
			}
			if got := ids(h.store.Rows()); !slices.Equal(got, []string{valid}) {
				t.Errorf("got stored ids %v, want only %v", got, valid)
			}
			acked, failed, rejected := h.src.told()
			if !slices.Equal(rejected, []string{tt.payload}) {
				t.Errorf("got rejected %q, want [%q]", rejected, tt.payload)
			}
			if len(acked) != 1 || acked[0] == tt.payload || len(failed) != 0 {
				t.Errorf("got acked %q and failed %q, want only the valid message acked", acked, failed)
			}
			if got := messages(t, h.reg, "rejected"); got != 1 {
				t.Errorf("worker_messages_total{result=\"rejected\"}: got %v, want 1", got)
			}
			if got := messages(t, h.reg, "received"); got != 2 {
				t.Errorf("worker_messages_total{result=\"received\"}: got %v, want 2", got)
			}
			if got := messages(t, h.reg, "stored"); got != 1 {
				t.Errorf("worker_messages_total{result=\"stored\"}: got %v, want 1", got)
			}
		})
	}
}

// A submitted_at a little ahead of the worker's clock (the api-server's
// host runs ahead, within techlist.MaxClockSkew) is stored, and observed as
// a lag of 0, never a negative one.
func TestLagIsNeverNegative(t *testing.T) {
	h := newHarness(t, Config{Concurrency: 1, BatchSize: 1, BatchWait: time.Millisecond, DrainTimeout: wait}, nil, nil)
	h.start(t)
	h.src.send(t, envelope(t, testID(1), "Go", fixedNow.Add(30*time.Second)))
	testenv.Eventually(t, "the tech to be stored", func() bool { return len(h.events.Published()) == 1 })
	if err := h.stop(t); err != nil {
		t.Errorf("Run: got %v, want nil", err)
	}
	families, err := h.reg.Gather()
	if err != nil {
		t.Fatalf("gather metrics: %v", err)
	}
	var found bool
	for _, f := range families {
		if f.GetName() != "worker_end_to_end_lag_seconds" {
			continue
		}
		found = true
		hist := f.GetMetric()[0].GetHistogram()
		if hist.GetSampleCount() != 1 || hist.GetSampleSum() != 0 {
			t.Errorf("worker_end_to_end_lag_seconds: got count %d sum %v, want count 1 sum 0", hist.GetSampleCount(), hist.GetSampleSum())
		}
	}
	if !found {
		t.Error("no worker_end_to_end_lag_seconds in the registry")
	}
}

func TestRetriesAFailingStore(t *testing.T) {
	store := &fakeStore{failFirst: 2}
	h := newHarness(t, Config{Concurrency: 4, BatchSize: 3, BatchWait: time.Hour, DrainTimeout: wait}, nil, store)
	h.start(t)
	want := []string{testID(1), testID(2), testID(3)}
	for _, id := range want {
		h.src.send(t, envelope(t, id, "Go "+id, fixedNow))
	}
	testenv.Eventually(t, "the batch to be stored", func() bool { return len(h.events.Published()) == 1 })
	if err := h.stop(t); err != nil {
		t.Fatalf("Run: got %v, want nil", err)
	}
	if got := store.Calls(); got != 3 {
		t.Errorf("got %d Insert calls, want 3 (two failures, then success)", got)
	}
	if got := sorted(ids(store.Rows())); !slices.Equal(got, want) {
		t.Errorf("got stored ids %v, want each of %v exactly once", got, want)
	}
	if invalidations, _ := h.cache.snapshot(); invalidations != 1 {
		t.Errorf("got %d invalidations, want 1 (only after the commit)", invalidations)
	}
	if acked, failed, _ := h.src.told(); len(acked) != 3 || h.src.ackCalls() != 1 || len(failed) != 0 {
		t.Errorf("got %d Ack calls acknowledging %q, and failed %q; want one Ack of the 3, after the commit", h.src.ackCalls(), acked, failed)
	}
	if got := messages(t, h.reg, "stored"); got != 3 {
		t.Errorf("worker_messages_total{result=\"stored\"}: got %v, want 3", got)
	}
	if got := messages(t, h.reg, "failed"); got != 0 {
		t.Errorf("worker_messages_total{result=\"failed\"}: got %v, want 0", got)
	}
}

func TestRetriesAFailingReceive(t *testing.T) {
	h := newHarness(t, Config{Concurrency: 4, BatchSize: 2, BatchWait: time.Hour, DrainTimeout: wait}, nil, nil)
	h.start(t)
	h.src.fail(t, errors.New("connection reset"))
	want := []string{testID(1), testID(2)}
	for _, id := range want {
		h.src.send(t, envelope(t, id, "Go", fixedNow))
	}
	testenv.Eventually(t, "the batch to be stored", func() bool { return len(h.store.Rows()) == 2 })
	if err := h.stop(t); err != nil {
		t.Errorf("Run: got %v, want nil", err)
	}
	if got := sorted(ids(h.store.Rows())); !slices.Equal(got, want) {
		t.Errorf("got stored ids %v, want %v", got, want)
	}
	if got := messages(t, h.reg, "received"); got != 2 {
		t.Errorf("worker_messages_total{result=\"received\"}: got %v, want 2 (a failed Receive is no message)", got)
	}
}

// blockingTask is an Analyse that blocks until released, counting the
// tasks running at once.
type blockingTask struct {
	release  chan struct{}
	started  atomic.Int64
	inFlight atomic.Int64
	max      atomic.Int64
}

func newBlockingTask() *blockingTask { return &blockingTask{release: make(chan struct{})} }

func (b *blockingTask) analyse(ctx context.Context, text string) (techlist.Priority, error) {
	n := b.inFlight.Add(1)
	defer b.inFlight.Add(-1)
	for {
		m := b.max.Load()
		if n <= m || b.max.CompareAndSwap(m, n) {
			break
		}
	}
	b.started.Add(1)
	select {
	case <-b.release:
		return priorityOf(text), nil
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

func TestShutdownWaitsForRunningTasks(t *testing.T) {
	task := newBlockingTask()
	h := newHarness(t, Config{Concurrency: 5, BatchSize: 100, BatchWait: time.Hour, DrainTimeout: time.Minute}, task.analyse, nil)
	h.start(t)
	want := []string{testID(1), testID(2), testID(3)}
	for _, id := range want {
		h.src.send(t, envelope(t, id, "Go", fixedNow))
	}
	testenv.Eventually(t, "three running tasks", func() bool { return task.started.Load() == 3 })

	h.cancel()
	// The tasks are blocked, so Run cannot have returned.
	select {
	case err := <-h.done:
		t.Fatalf("Run returned %v while its tasks were still running", err)
	default:
	}
	if got := len(h.store.Rows()); got != 0 {
		t.Fatalf("got %d rows stored before the tasks finished, want 0", got)
	}
	close(task.release)
	if err := h.stop(t); err != nil {
		t.Errorf("Run: got %v, want nil", err)
	}
	if got := sorted(ids(h.store.Rows())); !slices.Equal(got, want) {
		t.Errorf("got stored ids %v, want the running tasks' %v", got, want)
	}
}

func TestShutdownGivesUpAfterDrainTimeout(t *testing.T) {
	store := &fakeStore{failFirst: 1 << 30}
	h := newHarness(t, Config{Concurrency: 2, BatchSize: 1, BatchWait: time.Hour, DrainTimeout: 50 * time.Millisecond}, nil, store)
	h.start(t)
	payload := envelope(t, testID(1), "Go", fixedNow)
	h.src.send(t, payload)
	testenv.Eventually(t, "a failed insert", func() bool { return store.Calls() > 0 })

	err := h.stop(t) // bounded: fails the test if Run does not return
	if err == nil || !strings.Contains(err.Error(), "drain") {
		t.Errorf("Run: got %v, want an error about the drain", err)
	}
	if got := len(store.Rows()); got != 0 {
		t.Errorf("got %d rows stored, want 0", got)
	}
	if got := messages(t, h.reg, "failed"); got != 1 {
		t.Errorf("worker_messages_total{result=\"failed\"}: got %v, want 1", got)
	}
	if invalidations, _ := h.cache.snapshot(); invalidations != 0 {
		t.Errorf("got %d invalidations of a batch never stored, want 0", invalidations)
	}
	// A durable source must hand the message out again: failed, not acked.
	if acked, failed, _ := h.src.told(); len(acked) != 0 || !slices.Equal(failed, []string{string(payload)}) {
		t.Errorf("got acked %q and failed %q, want the unstored message failed and not acked", acked, failed)
	}
}

func TestConcurrencyIsBounded(t *testing.T) {
	const concurrency, total = 3, 12
	task := newBlockingTask()
	h := newHarness(t, Config{Concurrency: concurrency, BatchSize: total, BatchWait: time.Hour, DrainTimeout: wait}, task.analyse, nil)
	h.start(t)

	// The consumer stops receiving while all slots are taken, so feed it
	// from another goroutine.
	payloads := make([][]byte, total)
	for i := range payloads {
		payloads[i] = envelope(t, testID(i), "Go", fixedNow)
	}
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		for _, p := range payloads {
			select {
			case h.src.items <- sourceItem{payload: p}:
			case <-time.After(wait):
				return
			}
		}
	}()
	testenv.Eventually(t, "all slots taken", func() bool { return task.inFlight.Load() >= concurrency })
	// Let the tasks finish one at a time; each frees a slot for the next.
	for i := range total {
		select {
		case task.release <- struct{}{}:
		case <-time.After(wait):
			t.Fatalf("task %d never started", i+1)
		}
	}
	<-sent
	testenv.Eventually(t, "every row to be stored", func() bool { return len(h.store.Rows()) == total })
	if err := h.stop(t); err != nil {
		t.Errorf("Run: got %v, want nil", err)
	}
	if got := task.max.Load(); got != concurrency {
		t.Errorf("got at most %d tasks at once, want %d", got, concurrency)
	}
	if got := task.started.Load(); got != total {
		t.Errorf("got %d tasks run, want %d", got, total)
	}
}

func TestFailedTaskIsNotStored(t *testing.T) {
	analyse := func(ctx context.Context, text string) (techlist.Priority, error) {
		if text == "boom" {
			return "", errors.New("task failed")
		}
		return techlist.PriorityLow, nil
	}
	h := newHarness(t, Config{Concurrency: 1, BatchSize: 1, BatchWait: time.Hour, DrainTimeout: wait}, analyse, nil)
	h.start(t)
	boom, good := envelope(t, testID(1), "boom", fixedNow), envelope(t, testID(2), "Go", fixedNow)
	h.src.send(t, boom)
	h.src.send(t, good)
	testenv.Eventually(t, "the good row", func() bool { return len(h.store.Rows()) == 1 })
	if err := h.stop(t); err != nil {
		t.Errorf("Run: got %v, want nil", err)
	}
	if got := ids(h.store.Rows()); !slices.Equal(got, []string{testID(2)}) {
		t.Errorf("got stored ids %v, want [%s]", got, testID(2))
	}
	if got := messages(t, h.reg, "failed"); got != 1 {
		t.Errorf("worker_messages_total{result=\"failed\"}: got %v, want 1", got)
	}
	acked, failed, rejected := h.src.told()
	if !slices.Equal(acked, []string{string(good)}) || !slices.Equal(failed, []string{string(boom)}) || len(rejected) != 0 {
		t.Errorf("got acked %q, failed %q, rejected %q; want the good one acked and the failed task failed", acked, failed, rejected)
	}
}
