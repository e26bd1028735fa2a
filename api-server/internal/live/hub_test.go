package live_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/techlist/techlist"
	"github.com/techlist/techlist/redis"
	"github.com/techlist/techlist/testenv"

	"github.com/techlist/api-server/internal/cacheaside"
	"github.com/techlist/api-server/internal/live"
	"github.com/techlist/api-server/internal/stats"
)

// The real subscription is a Source.
var _ live.Source = (*redis.EventSubscription)(nil)

// What the api-server makes watch the hub.
var (
	_ live.Watcher = (*cacheaside.Invalidator)(nil)
	_ live.Watcher = (*stats.Source)(nil)
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func tech(n int) techlist.Tech {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	return techlist.Tech{
		ID:   "01890a5d-ac96-774b-bcce-00000000000" + string(rune('0'+n)),
		Text: "Tech " + string(rune('0'+n)), Priority: techlist.PriorityHigh, CreatedAt: at, SubmittedAt: at,
	}
}

// fakeSource hands out what the test pushes: an event, or an error.
type fakeSource struct {
	items  chan any
	closed atomic.Bool
}

func (f *fakeSource) Receive(ctx context.Context) (techlist.Event, error) {
	select {
	case <-ctx.Done():
		return techlist.Event{}, ctx.Err()
	case it := <-f.items:
		if err, ok := it.(error); ok {
			return techlist.Event{}, err
		}
		return it.(techlist.Event), nil
	}
}

func (f *fakeSource) Close() error { f.closed.Store(true); return nil }

// fakeRedis opens a fakeSource per subscription, failing the first fails
// attempts.
type fakeRedis struct {
	mu      sync.Mutex
	fails   int
	calls   int
	sources []*fakeSource
	opened  chan *fakeSource
}

func newFakeRedis(fails int) *fakeRedis {
	return &fakeRedis{fails: fails, opened: make(chan *fakeSource, 10)}
}

func (f *fakeRedis) subscribe(ctx context.Context) (live.Source, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.calls <= f.fails {
		return nil, errors.New("connection refused")
	}
	s := &fakeSource{items: make(chan any)}
	f.sources = append(f.sources, s)
	f.opened <- s
	return s, nil
}

// watcherFuncs is a Watcher of two funcs; either may be nil.
type watcherFuncs struct {
	stored func(ctx context.Context, ev techlist.Event)
	missed func()
}

func (w watcherFuncs) TechStored(ctx context.Context, ev techlist.Event) {
	if w.stored != nil {
		w.stored(ctx, ev)
	}
}

func (w watcherFuncs) EventsMissed() {
	if w.missed != nil {
		w.missed()
	}
}

func startHub(t *testing.T, sub live.SubscribeFunc, opts live.Options) (*live.Hub, context.CancelFunc) {
	t.Helper()
	opts.MinBackoff, opts.MaxBackoff = time.Millisecond, 5*time.Millisecond
	h := live.NewHub(sub, quiet, opts)
	ctx, cancel := context.WithCancel(context.Background())
	wait := live.Start(ctx, h)
	t.Cleanup(func() { cancel(); wait() })
	return h, cancel
}

func receive(t *testing.T, ch <-chan live.Message) live.Message {
	t.Helper()
	select {
	case m, ok := <-ch:
		if !ok {
			t.Fatal("channel closed, want a message")
		}
		return m
	case <-time.After(5 * time.Second):
		t.Fatal("no message within 5s")
	}
	return live.Message{}
}

func TestHubFansOutEveryEvent(t *testing.T) {
	fr := newFakeRedis(2) // Redis refuses twice, then answers
	var seen []string
	var mu sync.Mutex
	h, _ := startHub(t, fr.subscribe, live.Options{Watchers: []live.Watcher{watcherFuncs{stored: func(_ context.Context, ev techlist.Event) {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, ev.Tech.ID)
	}}}})
	src := <-fr.opened
	testenv.Eventually(t, "connected", h.Connected)

	a, leaveA := h.Join()
	defer leaveA()
	b, leaveB := h.Join()
	defer leaveB()
	if n := h.Clients(); n != 2 {
		t.Errorf("Clients: got %d, want 2", n)
	}

	src.items <- &techlist.BadEventError{Payload: []byte("x"), Err: errors.New("bad")} // skipped
	src.items <- techlist.Event{Type: techlist.EventTechCreated, Tech: tech(1)}
	for name, ch := range map[string]<-chan live.Message{"a": a, "b": b} {
		m := receive(t, ch)
		if m.ID != tech(1).ID {
			t.Errorf("client %s: got id %q, want %q", name, m.ID, tech(1).ID)
		}
		var ev techlist.Event
		if err := json.Unmarshal(m.Data, &ev); err != nil || ev.Type != "tech.created" || ev.Tech.Text != "Tech 1" {
			t.Errorf("client %s: got data %s (%v), want the tech.created event", name, m.Data, err)
		}
	}
	mu.Lock()
	if len(seen) != 1 || seen[0] != tech(1).ID {
		t.Errorf("TechStored: got %q, want [%s]", seen, tech(1).ID)
	}
	mu.Unlock()

	// A client that leaves gets nothing more; the other still does.
	leaveA()
	leaveA() // twice is harmless
	if _, ok := <-a; ok {
		t.Error("after leave: channel still open")
	}
	src.items <- techlist.Event{Type: techlist.EventTechCreated, Tech: tech(2)}
	if m := receive(t, b); m.ID != tech(2).ID {
		t.Errorf("got %q, want %q", m.ID, tech(2).ID)
	}
}

func TestHubResubscribesAfterALostConnection(t *testing.T) {
	fr := newFakeRedis(0)
	h, _ := startHub(t, fr.subscribe, live.Options{})
	first := <-fr.opened
	ch, leave := h.Join()
	defer leave()

	first.items <- errors.New("connection reset by peer")
	second := <-fr.opened
	testenv.Eventually(t, "the first subscription closed", first.closed.Load)
	testenv.Eventually(t, "connected again", h.Connected)
	second.items <- techlist.Event{Type: techlist.EventTechCreated, Tech: tech(3)}
	if m := receive(t, ch); m.ID != tech(3).ID {
		t.Errorf("after resubscribing: got %q, want %q", m.ID, tech(3).ID)
	}
}

func TestHubDropsASlowClient(t *testing.T) {
	fr := newFakeRedis(0)
	h, _ := startHub(t, fr.subscribe, live.Options{Buffer: 1})
	src := <-fr.opened
	slow, leaveSlow := h.Join()
	defer leaveSlow()
	fast, leaveFast := h.Join()
	defer leaveFast()

	src.items <- techlist.Event{Type: techlist.EventTechCreated, Tech: tech(1)}
	receive(t, fast)
	src.items <- techlist.Event{Type: techlist.EventTechCreated, Tech: tech(2)} // slow's buffer is full
	receive(t, fast)
	if m := receive(t, slow); m.ID != tech(1).ID {
		t.Errorf("slow client: got %q first, want %q", m.ID, tech(1).ID)
	}
	if _, ok := <-slow; ok {
		t.Error("slow client: channel still open, want it closed so the client reconnects")
	}
	if n := h.Clients(); n != 1 {
		t.Errorf("Clients: got %d, want 1", n)
	}
}

func TestHubStopClosesEveryClient(t *testing.T) {
	fr := newFakeRedis(0)
	h, cancel := startHub(t, fr.subscribe, live.Options{})
	src := <-fr.opened
	ch, leave := h.Join()
	defer leave()
	cancel()
	select {
	case _, ok := <-ch:
		if ok {
			t.Error("got a message, want the channel closed")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("channel not closed within 5s of the stop")
	}
	testenv.Eventually(t, "the subscription closed", src.closed.Load)
	if h.Connected() {
		t.Error("Connected after stop: got true")
	}
	late, _ := h.Join()
	if _, ok := <-late; ok {
		t.Error("Join after stop: got an open channel, want a closed one")
	}
}

// On the real Redis: what the worker's EventPublisher announces reaches a
// client of the hub.
func TestHubOnRedis(t *testing.T) {
	rdb, names := testenv.Redis(t)
	channel := redis.EventsChannel(names.Channel)
	h, _ := startHub(t, live.Redis(rdb, channel), live.Options{})
	testenv.Eventually(t, "subscribed", h.Connected)
	ch, leave := h.Join()
	defer leave()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := redis.NewEventPublisher(rdb, channel).PublishCreated(ctx, []techlist.Tech{tech(4), tech(5)}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{tech(4).ID, tech(5).ID} {
		if m := receive(t, ch); m.ID != want {
			t.Errorf("got %q, want %q", m.ID, want)
		}
	}
}

func TestEventsMissedIsCalledOnEachSubscriptionAndLoss(t *testing.T) {
	var gaps atomic.Int32
	redis := newFakeRedis(0)
	_, stop := startHub(t, redis.subscribe, live.Options{Watchers: []live.Watcher{watcherFuncs{missed: func() { gaps.Add(1) }}}})
	defer stop()
	first := <-redis.opened
	waitUntil := func(want int32) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for gaps.Load() < want {
			if time.Now().After(deadline) {
				t.Fatalf("gaps: got %d, want %d", gaps.Load(), want)
			}
			time.Sleep(time.Millisecond)
		}
	}
	waitUntil(1) // subscribed: events before it were missed
	first.items <- errors.New("connection reset")
	<-redis.opened
	waitUntil(3) // the loss, and the new subscription
}

// TestEveryWatcherIsTold: with several watchers, each one is told of each
// event and each gap, before clients get the event.
func TestEveryWatcherIsTold(t *testing.T) {
	fr := newFakeRedis(0)
	var stored, missed [2]atomic.Int32
	var watchers []live.Watcher
	for i := range 2 {
		watchers = append(watchers, watcherFuncs{
			stored: func(context.Context, techlist.Event) { stored[i].Add(1) },
			missed: func() { missed[i].Add(1) },
		})
	}
	h, _ := startHub(t, fr.subscribe, live.Options{Watchers: watchers})
	src := <-fr.opened
	testenv.Eventually(t, "connected", h.Connected)
	ch, leave := h.Join()
	defer leave()
	src.items <- techlist.Event{Type: techlist.EventTechCreated, Tech: tech(1)}
	receive(t, ch)
	for i := range 2 {
		if n := stored[i].Load(); n != 1 {
			t.Errorf("watcher %d: TechStored called %d times before the client got the event, want 1", i, n)
		}
		if n := missed[i].Load(); n != 1 {
			t.Errorf("watcher %d: EventsMissed called %d times after subscribing, want 1", i, n)
		}
	}
}
