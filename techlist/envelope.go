package techlist

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// EnvelopeVersion is the only envelope version this code reads and writes.
const EnvelopeVersion = 1

// Envelope is the message the api-server publishes for each accepted POST.
//
// RequestID, when present, is the id of the HTTP request that submitted the
// tech, so the worker's log lines for the record can be found from the
// api-server's (and the client-app's). The trace context, when present, is
// that of the api-server's publish span, so the worker's spans join the
// POST's trace.
type Envelope struct {
	V           int       `json:"v"`
	ID          string    `json:"id"`
	Text        string    `json:"text"`
	SubmittedAt time.Time `json:"submitted_at"`
	RequestID   string    `json:"request_id,omitempty"`
	TraceContext
}

// NewEnvelope returns the version-1 envelope for an accepted submission.
func NewEnvelope(id, text string, submittedAt time.Time) Envelope {
	return Envelope{V: EnvelopeVersion, ID: id, Text: text, SubmittedAt: submittedAt.UTC()}
}

// Encode returns the envelope's wire form: the bytes json.Marshal writes
// (TestEnvelopeEncodeIsMarshal checks it), appended by hand, since the
// api-server encodes one per POST and reflection was 3% of its CPU.
func (e Envelope) Encode() ([]byte, error) {
	b := make([]byte, 0, 96+len(e.ID)+len(e.Text)+len(e.RequestID)+len(e.Traceparent)+len(e.Tracestate))
	b = strconv.AppendInt(append(b, `{"v":`...), int64(e.V), 10)
	b = AppendJSONString(append(b, `,"id":`...), e.ID)
	b = AppendJSONString(append(b, `,"text":`...), e.Text)
	b, err := AppendJSONTime(append(b, `,"submitted_at":`...), e.SubmittedAt)
	if err != nil {
		return nil, fmt.Errorf("encode envelope: %w", err)
	}
	if e.RequestID != "" {
		b = AppendJSONString(append(b, `,"request_id":`...), e.RequestID)
	}
	if e.Traceparent != "" {
		b = AppendJSONString(append(b, `,"traceparent":`...), e.Traceparent)
	}
	if e.Tracestate != "" {
		b = AppendJSONString(append(b, `,"tracestate":`...), e.Tracestate)
	}
	return append(b, '}'), nil
}

// MaxClockSkew is how far in the future of the reader's clock an
// envelope's submitted_at may be. The api-server stamps it from its own
// clock and the worker may run on another host, so a little skew is normal
// (hosts kept by NTP differ by milliseconds); 5 minutes is Kerberos's
// default tolerance for clocks of different hosts. It is generous on
// purpose: a pubsub message refused for its time is lost, so only a time
// no host with a roughly right clock could have stamped is refused.
const MaxClockSkew = 5 * time.Minute

// DecodeEnvelope parses and checks a message taken off the channel or stream.
// Anyone who can reach Redis can put bytes there, so nothing is trusted: an
// unknown version, an id that is not a UUIDv7 (what the api-server makes),
// a text that would not pass the API's own validation, or a submitted_at
// more than MaxClockSkew after now is an error, and the message must not be
// stored.
func DecodeEnvelope(data []byte) (Envelope, error) {
	return decodeEnvelopeAt(data, time.Now())
}

// decodeEnvelopeAt is DecodeEnvelope with the reader's clock reading now.
func decodeEnvelopeAt(data []byte, now time.Time) (Envelope, error) {
	e, err := parseEnvelope(data)
	if err != nil {
		return Envelope{}, fmt.Errorf("decode envelope: %w", err)
	}
	if e.V != EnvelopeVersion {
		return Envelope{}, fmt.Errorf("decode envelope: unsupported version %d", e.V)
	}
	if !ValidV7ID(e.ID) {
		return Envelope{}, fmt.Errorf("decode envelope: invalid id %q: not a UUIDv7", e.ID)
	}
	text, err := ValidateText(e.Text)
	if err != nil {
		return Envelope{}, fmt.Errorf("decode envelope: %w", err)
	}
	// What the API refuses in a POST body, read here as U+FFFD, is refused
	// too: the api-server never writes either.
	if strings.ContainsRune(e.Text, utf8.RuneError) && (!utf8.Valid(data) || HasLoneSurrogate(data)) {
		return Envelope{}, fmt.Errorf("decode envelope: text is not valid UTF-8")
	}
	if text != e.Text {
		return Envelope{}, fmt.Errorf("decode envelope: text is not trimmed")
	}
	if e.SubmittedAt.IsZero() {
		return Envelope{}, fmt.Errorf("decode envelope: missing submitted_at")
	}
	if e.SubmittedAt.After(now.Add(MaxClockSkew)) {
		return Envelope{}, fmt.Errorf("decode envelope: submitted_at %s is more than %s in the future", e.SubmittedAt.Format(time.RFC3339), MaxClockSkew)
	}
	if e.RequestID != "" && !ValidRequestID(e.RequestID) {
		return Envelope{}, fmt.Errorf("decode envelope: invalid request_id %q", e.RequestID)
	}
	e.TraceContext = e.TraceContext.checked()
	return e, nil
}
