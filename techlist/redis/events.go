package redis

import (
	"context"

	goredis "github.com/redis/go-redis/v9"
	"github.com/techlist/techlist"
)

// EventsChannel returns the channel the worker announces committed techs
// on: REDIS_CHANNEL followed by ":events".
func EventsChannel(channel string) string { return channel + ":events" }

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
