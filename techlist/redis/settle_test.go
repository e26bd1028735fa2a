package redis_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/techlist/techlist"
	"github.com/techlist/techlist/redis"
	"github.com/techlist/techlist/testenv"
)

// One Settle acknowledges and deletes the batch's entries, clears their
// pending marks and invalidates the lists before the first event goes out:
// whoever reacts to an event finds it all done.
func TestSettlerSettlesABatchBeforeItsEvents(t *testing.T) {
	t.Parallel()
	rdb, names := testenv.Redis(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stream := streamName(names)
	pub := redis.NewStreamPublisher(rdb, stream, 100, time.Minute)
	cache := redis.NewCache(rdb, names.Prefix, time.Minute)
	var ids []string
	for i := range 3 {
		env := techlist.NewEnvelope(fmt.Sprintf("01890a5d-ac96-774b-bcce-%s%02d", testenv.Suffix(), i), fmt.Sprintf("tech %d", i), time.Now())
		if err := pub.Publish(ctx, env); err != nil {
			t.Fatal(err)
		}
		if err := cache.MarkPending(ctx, env.ID, time.Minute); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, env.ID)
	}
	c := newConsumer(t, rdb, streamConfig(stream, "a"))
	var ds []techlist.Delivery
	var events []techlist.Event
	for i := range 3 {
		ds = append(ds, receive(t, c))
		events = append(events, techlist.Event{Type: techlist.EventTechCreated,
			Tech: techlist.Tech{ID: ids[i], Text: fmt.Sprintf("tech %d", i), Priority: techlist.PriorityLow, CreatedAt: time.Now().UTC()}})
	}
	if _, gen, _, err := cache.Page(ctx, "50:"); err != nil {
		t.Fatal(err)
	} else if ok, err := cache.SetPage(ctx, "50:", []byte("old page"), gen); err != nil || !ok {
		t.Fatalf("SetPage: %v, %v", ok, err)
	}
	sub, err := redis.SubscribeEvents(ctx, rdb, redis.EventsChannel(names.Channel))
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()

	settler, err := redis.NewSettler(rdb, c, cache, redis.NewEventPublisher(rdb, redis.EventsChannel(names.Channel)))
	if err != nil {
		t.Fatal(err)
	}
	if err := settler.Settle(ctx, ds, ids, events); err != nil {
		t.Fatalf("Settle: %v", err)
	}
	for i := range 3 {
		ev, err := sub.Receive(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if ev.Tech.ID != ids[i] {
			t.Errorf("event %d: got %s, want %s (in the batch's order)", i, ev.Tech.ID, ids[i])
		}
		if i > 0 {
			continue
		}
		// Received the first event: everything before it is done.
		if pending, err := rdb.XPending(ctx, stream, "workers").Result(); err != nil || pending.Count != 0 {
			t.Errorf("pending entries at the first event: %+v, %v; want none", pending, err)
		}
		if n, err := rdb.XLen(ctx, stream).Result(); err != nil || n != 0 {
			t.Errorf("stream length at the first event: %d, %v; want 0 (acked entries deleted)", n, err)
		}
		for _, id := range ids {
			if p, err := cache.Pending(ctx, id); err != nil || p {
				t.Errorf("%s pending at the first event: %v, %v; want cleared", id, p, err)
			}
		}
		if page, _, _, err := cache.Page(ctx, "50:"); err != nil || page != nil {
			t.Errorf("cached page at the first event: %q, %v; want invalidated", page, err)
		}
	}
}

func TestNewSettlerRefusesAnotherSource(t *testing.T) {
	rdb, names := testenv.Redis(t)
	cache := redis.NewCache(rdb, names.Prefix, time.Minute)
	if _, err := redis.NewSettler(rdb, struct{}{}, cache, redis.NewEventPublisher(rdb, "x")); err == nil {
		t.Error("NewSettler over a source of another package: got no error")
	}
}
