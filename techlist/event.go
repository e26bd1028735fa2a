package techlist

import (
	"encoding/json"
	"fmt"
)

// Event is what the worker-server publishes on the events channel after a
// row is committed. The trace context, when present, is that of the
// worker's span that stored the row, so a page's live update can be tied
// to the POST that caused it.
type Event struct {
	Type string `json:"type"`
	Tech Tech   `json:"tech"`
	TraceContext
}

// EventTechCreated is the type of the event announcing a committed tech.
const EventTechCreated = "tech.created"

// BadEventError reports a message on the events channel that is not a
// well-formed tech.created event. The subscription is still good: a caller
// skips the message and receives the next.
type BadEventError struct {
	Payload []byte
	Err     error
}

func (e *BadEventError) Error() string { return "bad event: " + e.Err.Error() }

func (e *BadEventError) Unwrap() error { return e.Err }

// DecodeEvent decodes and checks one tech.created event: a known type, a
// valid id, valid text, a known priority and a commit time. Whoever reads
// the events channel (the api-server) or the event stream (the client-app)
// decodes with this, so both refuse the same things.
func DecodeEvent(payload []byte) (Event, error) {
	var ev Event
	if err := json.Unmarshal(payload, &ev); err != nil {
		return Event{}, fmt.Errorf("decode event: %w", err)
	}
	switch {
	case ev.Type != EventTechCreated:
		return Event{}, fmt.Errorf("decode event: unknown type %q", ev.Type)
	case !ValidID(ev.Tech.ID):
		return Event{}, fmt.Errorf("decode event: invalid id %q", ev.Tech.ID)
	case !ev.Tech.Priority.Valid():
		return Event{}, fmt.Errorf("decode event: invalid priority %q", ev.Tech.Priority)
	case ev.Tech.CreatedAt.IsZero():
		return Event{}, fmt.Errorf("decode event: missing created_at")
	}
	if _, err := ValidateText(ev.Tech.Text); err != nil {
		return Event{}, fmt.Errorf("decode event: %w", err)
	}
	ev.TraceContext = ev.TraceContext.checked()
	return ev, nil
}
