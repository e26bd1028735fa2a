package redis

import (
	"context"
	"fmt"

	goredis "github.com/redis/go-redis/v9"
	"github.com/techlist/techlist"
)

// EventsChannel returns the channel the worker announces committed techs
// on: REDIS_CHANNEL followed by ":events".
func EventsChannel(channel string) string { return channel + ":events" }

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

// PublishCreated publishes one tech.created event per tech, in one round
// trip.
func (e *EventPublisher) PublishCreated(ctx context.Context, techs []techlist.Tech) error {
	events := make([]techlist.Event, len(techs))
	for i, t := range techs {
		events[i] = techlist.Event{Type: techlist.EventTechCreated, Tech: t}
	}
	return e.Announce(ctx, events)
}

// Announce publishes events, in one round trip.
func (e *EventPublisher) Announce(ctx context.Context, events []techlist.Event) error {
	if len(events) == 0 {
		return nil
	}
	// One buffer for the batch's events: each PUBLISH holds its slice of
	// it until the pipeline is sent.
	buf := make([]byte, 0, 256*len(events))
	_, err := e.rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for _, ev := range events {
			start := len(buf)
			var err error
			if buf, err = ev.AppendJSON(buf); err != nil {
				return fmt.Errorf("encode event: %w", err)
			}
			b := buf[start:len(buf):len(buf)]
			if isCluster(e.rdb) {
				p.SPublish(ctx, e.channel, b) // as SubscribeEvents subscribes, sharded
			} else {
				p.Publish(ctx, e.channel, b)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("publish %d events to %s: %w", len(events), e.channel, err)
	}
	return nil
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

// EventSubscription receives the events the worker publishes after each
// commit. Pub/sub keeps nothing: events published while no subscription
// is connected are not received.
type EventSubscription struct {
	sub *Subscription
}

// SubscribeEvents subscribes to channel (see EventsChannel) and waits until
// Redis confirms, so that events published from then on are received. The
// caller closes the subscription.
func SubscribeEvents(ctx context.Context, rdb goredis.UniversalClient, channel string) (*EventSubscription, error) {
	sub, err := Subscribe(ctx, rdb, channel)
	if err != nil {
		return nil, err
	}
	return &EventSubscription{sub: sub}, nil
}

// Receive blocks until an event arrives or ctx ends. A message that is not
// a valid tech.created event gives a *techlist.BadEventError; a connection
// error is returned as it is, and the next call reconnects.
func (s *EventSubscription) Receive(ctx context.Context) (techlist.Event, error) {
	d, err := s.sub.Receive(ctx)
	if err != nil {
		return techlist.Event{}, err
	}
	ev, err := techlist.DecodeEvent(d.Payload)
	if err != nil {
		return techlist.Event{}, &techlist.BadEventError{Payload: d.Payload, Err: err}
	}
	return ev, nil
}

// Close unsubscribes and closes the subscription's connection.
func (s *EventSubscription) Close() error { return s.sub.Close() }
