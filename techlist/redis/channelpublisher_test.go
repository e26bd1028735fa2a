package redis_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/techlist/techlist"
	"github.com/techlist/techlist/redis"
	"github.com/techlist/techlist/testenv"
)

func TestPublishWithoutSubscriberIsRefused(t *testing.T) {
	t.Parallel()
	rdb, names := testenv.Redis(t)
	pub := redis.NewPublisher(rdb, names.Channel)
	env := techlist.NewEnvelope("01890a5d-ac96-774b-bcce-b302099a8057", "Go", time.Now())
	if err := pub.Publish(context.Background(), env); !errors.Is(err, techlist.ErrNoSubscribers) {
		t.Errorf("got %v, want ErrNoSubscribers", err)
	}
}

func TestPublishSubscribeRoundTrip(t *testing.T) {
	t.Parallel()
	rdb, names := testenv.Redis(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sub, err := redis.NewChannelConsumer(ctx, rdb, redis.ChannelConfig{Channel: names.Channel, Worker: "w", Buffer: 10})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()

	want := techlist.NewEnvelope("01890a5d-ac96-774b-bcce-b302099a8057", "Go 🚀", time.Now())
	if err := redis.NewPublisher(rdb, names.Channel).Publish(ctx, want); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	d, err := sub.Receive(ctx)
	if err != nil {
		t.Fatalf("Receive: %v", err)
	}
	got, err := techlist.DecodeEnvelope(d.Payload)
	if err != nil {
		t.Fatalf("DecodeEnvelope: %v", err)
	}
	if !got.SubmittedAt.Equal(want.SubmittedAt) || got.ID != want.ID || got.Text != want.Text || got.V != 1 {
		t.Errorf("got %+v, want %+v", got, want)
	}
	if err := sub.Ack(ctx, d); err != nil {
		t.Errorf("Ack on pub/sub: %v", err)
	}
}
