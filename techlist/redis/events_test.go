package redis_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/techlist/techlist"
	"github.com/techlist/techlist/redis"
	"github.com/techlist/techlist/testenv"
)

func TestEventsChannel(t *testing.T) {
	if got, want := redis.EventsChannel("channel1"), "channel1:events"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// Events published by the worker's EventPublisher come out of
// SubscribeEvents decoded; a malformed message in between is reported as a
// *BadEventError and the subscription keeps working.
func TestSubscribeEventsRoundTrip(t *testing.T) {
	t.Parallel()
	rdb, names := testenv.Redis(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	channel := redis.EventsChannel(names.Channel)
	sub, err := redis.SubscribeEvents(ctx, rdb, channel)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()

	now := time.Now().UTC().Truncate(time.Microsecond)
	tech := techlist.Tech{ID: "01890a5d-ac96-774b-bcce-b302099a8057", Text: "<b>Go</b>", Priority: techlist.PriorityLow, CreatedAt: now, SubmittedAt: now.Add(-time.Second)}
	if err := rdb.Publish(ctx, channel, `{"type":"tech.created","tech":{"id":"nope"}}`).Err(); err != nil {
		t.Fatal(err)
	}
	if err := redis.NewEventPublisher(rdb, channel).PublishCreated(ctx, []techlist.Tech{tech}); err != nil {
		t.Fatal(err)
	}

	_, err = sub.Receive(ctx)
	if bad, ok := errors.AsType[*techlist.BadEventError](err); !ok {
		t.Fatalf("malformed event: got %v, want a *BadEventError", err)
	} else if string(bad.Payload) != `{"type":"tech.created","tech":{"id":"nope"}}` {
		t.Errorf("bad payload: got %q", bad.Payload)
	}
	ev, err := sub.Receive(ctx)
	if err != nil {
		t.Fatalf("Receive: %v", err)
	}
	if ev.Type != techlist.EventTechCreated || ev.Tech.ID != tech.ID || ev.Tech.Text != tech.Text ||
		ev.Tech.Priority != tech.Priority || !ev.Tech.CreatedAt.Equal(tech.CreatedAt) || !ev.Tech.SubmittedAt.Equal(tech.SubmittedAt) {
		t.Errorf("got %+v, want the event of %+v", ev, tech)
	}

	// Receive ends when its context is cancelled.
	short, cancelShort := context.WithCancel(ctx)
	time.AfterFunc(50*time.Millisecond, cancelShort)
	if _, err := sub.Receive(short); !errors.Is(err, context.Canceled) {
		t.Errorf("Receive after its context ended: got %v, want context.Canceled", err)
	}
}

func TestEventsArePublished(t *testing.T) {
	t.Parallel()
	rdb, names := testenv.Redis(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ps := rdb.Subscribe(ctx, names.Channel+":events")
	defer ps.Close()
	if _, err := ps.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	tech := techlist.Tech{ID: "01890a5d-ac96-774b-bcce-b302099a8057", Text: "Go", Priority: techlist.PriorityHigh, CreatedAt: time.Now().UTC(), SubmittedAt: time.Now().UTC()}
	if err := redis.NewEventPublisher(rdb, names.Channel+":events").PublishCreated(ctx, []techlist.Tech{tech}); err != nil {
		t.Fatal(err)
	}
	msg, err := ps.ReceiveMessage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var ev techlist.Event
	if err := json.Unmarshal([]byte(msg.Payload), &ev); err != nil {
		t.Fatal(err)
	}
	if ev.Type != "tech.created" || ev.Tech.ID != tech.ID || ev.Tech.Priority != techlist.PriorityHigh {
		t.Errorf("got %+v, want a tech.created event for %s", ev, tech.ID)
	}
}

func TestReceiveReturnsWhenContextEnds(t *testing.T) {
	t.Parallel()
	rdb, names := testenv.Redis(t)
	sub, err := redis.Subscribe(context.Background(), rdb, names.Channel)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := sub.Receive(ctx)
		done <- err
	}()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("got %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Receive still blocked 10s after its context ended")
	}
}
