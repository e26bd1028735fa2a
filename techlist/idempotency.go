package techlist

// KeyOutcome is what reserving an Idempotency-Key found (see the Redis
// adapter's Idempotency.Reserve).
type KeyOutcome int

const (
	// KeyReserved: the key is new; publish the given id.
	KeyReserved KeyOutcome = iota + 1
	// KeyRetaken: an earlier request with the key crashed (its lease ran
	// out) or could not tell whether it was queued; publish the stored id
	// again.
	KeyRetaken
	// KeyReplay: the key already answered; answer the stored id again.
	KeyReplay
	// KeyBusy: a request with the key is in flight.
	KeyBusy
	// KeyMismatch: the key came with another request (another fingerprint).
	KeyMismatch
)

// KeyReservation is a key's state as reserving it found it. With
// KeyReserved or KeyRetaken the caller holds the key's lease and must
// settle it: confirm, release, or mark its outcome unknown.
type KeyReservation struct {
	Outcome     KeyOutcome
	ID          string // the id to publish or answer; empty on KeyMismatch
	Key         string // the client's Idempotency-Key
	Fingerprint string
	Token       string // names this request's lease
}
