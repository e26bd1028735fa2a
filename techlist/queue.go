package techlist

import "errors"

// Delivery is one message taken off the queue: the envelope's bytes as
// published, and, on a queue that keeps messages until they are
// acknowledged (a Redis stream), the entry's ID and Deliveries, which
// attempt this is (1 + the failed attempts counted; a claim or a restart is
// not an attempt). On a queue that keeps nothing (pub/sub) both are zero
// values and acknowledging does nothing (the message is already gone).
type Delivery struct {
	Payload    []byte
	ID         string
	Deliveries int64
	// Partition is the source's own index of the stream holding the entry,
	// when it reads several (partitioned streams); 0 otherwise.
	Partition int
}

// ErrNoSubscribers is returned by a publish when no worker was subscribed
// to receive the message: pub/sub keeps nothing, so the message is gone and
// the submission must not be claimed as accepted.
var ErrNoSubscribers = errors.New("no worker is subscribed to the channel")

// ErrQueueFull is returned by a publish when the queue (a stream) already
// holds its maximum of unprocessed entries: the submission is refused
// rather than older work trimmed away.
var ErrQueueFull = errors.New("the queue is full")

// ErrDrained is returned by a draining source's Receive (the pub/sub
// consumer, once stopped) when it has left the channel and handed out
// everything it had read.
var ErrDrained = errors.New("the subscription has ended and its buffer is empty")

// ErrNotSent is returned by a publish that never reached the queue (no
// connection to Redis, or the publisher is closed): the submission was
// clearly not accepted.
var ErrNotSent = errors.New("the message was not sent to the queue")
