package redis

import (
	"context"
	"encoding/json"
	"fmt"

	goredis "github.com/redis/go-redis/v9"
	"github.com/techlist/techlist"
)

// Publisher puts envelopes on a pub/sub channel.
type Publisher struct {
	rdb     goredis.UniversalClient
	channel string
}

// NewPublisher returns a Publisher for channel.
func NewPublisher(rdb goredis.UniversalClient, channel string) *Publisher {
	return &Publisher{rdb: rdb, channel: channel}
}

// Publish sends env, and returns techlist.ErrNoSubscribers when no worker
// was there to receive it: no live lease in the register of workers (see
// Presence), or no exact subscriber on the channel. Both are checked and the message
// published in one script, so nothing changes between the check and the
// PUBLISH.
func (p *Publisher) Publish(ctx context.Context, env techlist.Envelope) error {
	b, err := env.Encode()
	if err != nil {
		return err
	}
	sharded := "0"
	if isCluster(p.rdb) {
		sharded = "1"
	}
	n, err := publishToWorker.Run(ctx, p.rdb, []string{WorkersKey(p.channel)}, p.channel, b, sharded).Int64()
	if err != nil {
		return fmt.Errorf("publish to %s: %w", p.channel, err)
	}
	if n == 0 {
		return techlist.ErrNoSubscribers
	}
	return nil
}

// isCluster reports whether rdb talks to a Redis Cluster. There the work
// channel uses sharded pub/sub (SPUBLISH, SSUBSCRIBE, Redis 7): a plain
// PUBLISH counts only the receivers on the node it reached, so "nobody
// received it" could not be told apart from "received on another node".
func isCluster(rdb goredis.UniversalClient) bool {
	_, ok := rdb.(*goredis.ClusterClient)
	return ok
}

// Subscription receives messages from a pub/sub channel, straight from
// its connection: for the events, which may be lost. The worker's channel
// is read by a ChannelConsumer.
type Subscription struct {
	ps *goredis.PubSub
}

// Subscribe subscribes to channel (sharded on a cluster) and waits until
// Redis confirms, so that when it returns, messages published from then on
// are received.
// The caller closes the subscription.
func Subscribe(ctx context.Context, rdb goredis.UniversalClient, channel string) (*Subscription, error) {
	var ps *goredis.PubSub
	if isCluster(rdb) {
		ps = rdb.SSubscribe(ctx, channel)
	} else {
		ps = rdb.Subscribe(ctx, channel)
	}
	if _, err := ps.Receive(ctx); err != nil {
		ps.Close()
		return nil, fmt.Errorf("subscribe to %s: %w", channel, err)
	}
	return &Subscription{ps: ps}, nil
}

// Receive blocks until a message arrives or ctx ends. After a connection
// error it returns the error; the next call reconnects and subscribes again.
//
// When ctx ends the subscription is closed: a blocked read does not watch
// ctx, and a worker that is stopping takes no more messages anyway.
func (s *Subscription) Receive(ctx context.Context) (techlist.Delivery, error) {
	stop := context.AfterFunc(ctx, func() { s.ps.Close() })
	defer stop()
	msg, err := s.ps.ReceiveMessage(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return techlist.Delivery{}, ctx.Err()
		}
		return techlist.Delivery{}, fmt.Errorf("receive: %w", err)
	}
	return techlist.Delivery{Payload: []byte(msg.Payload)}, nil
}

// Close unsubscribes and closes the subscription's connection.
func (s *Subscription) Close() error { return s.ps.Close() }

// EventPublisher announces committed techs on the events channel.
type EventPublisher struct {
	rdb     goredis.UniversalClient
	channel string
}

// NewEventPublisher returns an EventPublisher for channel (REDIS_CHANNEL
// followed by ":events").
func NewEventPublisher(rdb goredis.UniversalClient, channel string) *EventPublisher {
	return &EventPublisher{rdb: rdb, channel: channel}
}

// PublishCreated publishes one tech.created event per tech, in one round trip.
func (e *EventPublisher) PublishCreated(ctx context.Context, techs []techlist.Tech) error {
	if len(techs) == 0 {
		return nil
	}
	_, err := e.rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for _, t := range techs {
			b, err := json.Marshal(techlist.Event{Type: techlist.EventTechCreated, Tech: t})
			if err != nil {
				return fmt.Errorf("encode event: %w", err)
			}
			if isCluster(e.rdb) {
				p.SPublish(ctx, e.channel, b) // as SubscribeEvents subscribes, sharded
			} else {
				p.Publish(ctx, e.channel, b)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("publish %d events to %s: %w", len(techs), e.channel, err)
	}
	return nil
}
