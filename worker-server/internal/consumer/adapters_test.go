package consumer

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/techlist/techlist"
	"github.com/techlist/techlist/mysql"
	"github.com/techlist/techlist/redis"
	"github.com/techlist/techlist/testenv"

	"github.com/techlist/worker-server/internal/task"
)

// The real adapters satisfy the consumer's interfaces.
var (
	_ Drainer = (*redis.ChannelConsumer)(nil)
	_ Source  = (*redis.StreamConsumer)(nil)
	_ Store   = (*mysql.Store)(nil)
	_ Cache   = (*redis.Cache)(nil)
	_ Events  = (*redis.EventPublisher)(nil)
	_ Analyse = task.Analyser{}.Analyse
)

// TestOverRedisAndMySQL runs the consumer on the real adapters: envelopes
// published on the channel become rows, a duplicate makes no second row,
// each commit bumps the cache generation, clears the pending marks and
// announces the rows on the events channel.
func TestOverRedisAndMySQL(t *testing.T) {
	t.Parallel()
	cfg, db := testenv.MySQL(t)
	rdb, names := testenv.Redis(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	store := mysql.NewStore(db, cfg.Table)
	cache := redis.NewCache(rdb, names.Prefix, time.Minute)
	sub, err := redis.NewChannelConsumer(ctx, rdb, redis.ChannelConfig{Channel: names.Channel, Worker: "test", Buffer: 100})
	if err != nil {
		t.Fatalf("NewChannelConsumer: %v", err)
	}
	defer sub.Close()
	events := rdb.Subscribe(ctx, names.Channel+":events")
	defer events.Close()
	if _, err := events.Receive(ctx); err != nil { // the subscription's confirmation
		t.Fatalf("subscribe to events: %v", err)
	}

	reg := prometheus.NewRegistry()
	cons := New(Config{Concurrency: 8, BatchSize: 10, BatchWait: 5 * time.Millisecond, DrainTimeout: 10 * time.Second}, Deps{
		Source: sub, Analyse: task.Analyser{}.Analyse, Store: store, Cache: cache, Events: redis.NewEventPublisher(rdb, names.Channel+":events"),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Metrics: NewMetrics(reg), Now: mysql.Now,
	})
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- cons.Run(runCtx) }()
	defer func() {
		stop()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: got %v, want nil", err)
			}
		case <-time.After(wait):
			t.Errorf("Run did not return within %s of its context ending", wait)
		}
	}()

	pub := redis.NewPublisher(rdb, names.Channel)
	texts := []string{"Patch the security hole", "Fix a typo in the README", "Kubernetes"}
	var envs []techlist.Envelope
	for i, text := range texts {
		env := techlist.NewEnvelope(testID(i+1), text, mysql.Now()) // at the precision MySQL keeps
		if err := cache.MarkPending(ctx, env.ID, time.Minute); err != nil {
			t.Fatal(err)
		}
		envs = append(envs, env)
		publish(t, ctx, pub, env)
	}

	// Every row is announced once it is committed.
	got := map[string]techlist.Tech{}
	for len(got) < len(envs) {
		msg, err := events.ReceiveMessage(ctx)
		if err != nil {
			t.Fatalf("got %d of %d events: %v", len(got), len(envs), err)
		}
		var ev techlist.Event
		if err := json.Unmarshal([]byte(msg.Payload), &ev); err != nil {
			t.Fatalf("event %q: %v", msg.Payload, err)
		}
		if ev.Type != techlist.EventTechCreated {
			t.Errorf("got event type %q, want %q", ev.Type, techlist.EventTechCreated)
		}
		got[ev.Tech.ID] = ev.Tech
	}
	for _, env := range envs {
		row, err := store.Get(ctx, env.ID)
		if err != nil {
			t.Fatalf("Get(%s): %v", env.ID, err)
		}
		if want := task.Priority(env.Text); row.Text != env.Text || row.Priority != want || !row.SubmittedAt.Equal(env.SubmittedAt) {
			t.Errorf("got row %+v, want text %q, priority %s, submitted_at %v", row, env.Text, want, env.SubmittedAt)
		}
		if ev, ok := got[env.ID]; !ok || !techEqual(ev, row) {
			t.Errorf("got event tech %+v, want the stored row %+v", ev, row)
		}
		pending, err := cache.Pending(ctx, env.ID)
		if err != nil || pending {
			t.Errorf("Pending(%s): got %v, %v, want false, nil (cleared after the commit)", env.ID, pending, err)
		}
	}
	gen, err := rdb.Get(ctx, names.Prefix+":{list}:gen").Int()
	if err != nil || gen < 1 {
		t.Errorf("cache generation: got %d, %v, want at least 1 (bumped after a commit)", gen, err)
	}

	// The same envelope twice, in one batch or in two: still one row each,
	// as first stored.
	before, err := store.Get(ctx, envs[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	publish(t, ctx, pub, envs[0])
	publish(t, ctx, pub, envs[0])
	testenv.Eventually(t, "the duplicates to be handled", func() bool { return messages(t, reg, "received") == 5 && messages(t, reg, "stored") == 5 })
	page, err := store.List(ctx, 100, "")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := ids(page.Data), []string{testID(3), testID(2), testID(1)}; !slices.Equal(got, want) {
		t.Errorf("got rows %v, want %v (one per id)", got, want)
	}
	after, err := store.Get(ctx, envs[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if !techEqual(after, before) {
		t.Errorf("a duplicate changed the row: got %+v, want %+v", after, before)
	}
}

// publish puts env on channel, failing unless a subscriber received it.
func publish(t *testing.T, ctx context.Context, pub *redis.Publisher, env techlist.Envelope) {
	t.Helper()
	if err := pub.Publish(ctx, env); err != nil {
		t.Fatalf("publish %s: %v", env.ID, err)
	}
}
