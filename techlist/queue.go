package techlist

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
}
