package techlist

import (
	"bytes"
	"encoding/json"
	"errors"
	"unicode/utf8"
)

var errTrailingData = errors.New("trailing data after the object")

// The worker decodes every envelope it stores, tens of thousands a second
// in a drain, and encoding/json's reflection was a sixth of its CPU.
// parseEnvelopeFast reads the common case by hand: one flat object, as
// the api-server writes it, whose members are the known ones, each at most
// once, with string values without escapes and an integer v. Anything else
// (an escape, an unknown or repeated member, a null, a nested value, data
// after the object) gives ok false, and parseEnvelope falls back to
// encoding/json; so both paths read the same input the same way
// (FuzzEnvelopeFastPath checks it), and the checks after parsing are
// shared.

// parseEnvelope parses data into an envelope, unchecked.
func parseEnvelope(data []byte) (Envelope, error) {
	if e, ok := parseEnvelopeFast(data); ok {
		return e, nil
	}
	return parseEnvelopeJSON(data)
}

// parseEnvelopeJSON is the general path: any JSON encoding/json accepts.
// Unknown members are ignored, as the contract says: a newer producer's
// optional members must not make this reader drop the message.
func parseEnvelopeJSON(data []byte) (Envelope, error) {
	var e Envelope
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&e); err != nil {
		return Envelope{}, err
	}
	if dec.More() {
		return Envelope{}, errTrailingData
	}
	return e, nil
}

// envelopeScanner walks data by hand; see parseEnvelopeFast.
type envelopeScanner struct {
	data []byte
	i    int
}

func (s *envelopeScanner) skipSpace() {
	for s.i < len(s.data) {
		switch s.data[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// consume skips white space and then c, reporting whether c was there.
func (s *envelopeScanner) consume(c byte) bool {
	s.skipSpace()
	if s.i < len(s.data) && s.data[s.i] == c {
		s.i++
		return true
	}
	return false
}

// str reads a string without escapes, control characters or invalid
// UTF-8 (which encoding/json would unescape or replace), returning its
// bytes between the quotes.
func (s *envelopeScanner) str() ([]byte, bool) {
	if !s.consume('"') {
		return nil, false
	}
	start := s.i
	for s.i < len(s.data) {
		c := s.data[s.i]
		switch {
		case c == '"':
			b := s.data[start:s.i]
			s.i++
			return b, utf8.Valid(b)
		case c == '\\' || c < 0x20:
			return nil, false
		}
		s.i++
	}
	return nil, false
}

// smallInt reads a non-negative integer of at most 6 digits, without a
// leading zero.
func (s *envelopeScanner) smallInt() (int, bool) {
	s.skipSpace()
	start, n := s.i, 0
	for s.i < len(s.data) && s.data[s.i] >= '0' && s.data[s.i] <= '9' && s.i-start < 6 {
		n = n*10 + int(s.data[s.i]-'0')
		s.i++
	}
	digits := s.i - start
	if digits == 0 || (digits > 1 && s.data[start] == '0') || s.i < len(s.data) && isNumberByte(s.data[s.i]) {
		return 0, false
	}
	return n, true
}

func isNumberByte(c byte) bool {
	return c >= '0' && c <= '9' || c == '.' || c == 'e' || c == 'E' || c == '-' || c == '+'
}

// The members the fast path knows, as bits of a seen set.
const (
	memberV = 1 << iota
	memberID
	memberText
	memberSubmittedAt
	memberRequestID
	memberTraceparent
	memberTracestate
)

// parseEnvelopeFast parses the common form of an envelope; ok is false
// when data is anything else (see the top of this file).
func parseEnvelopeFast(data []byte) (e Envelope, ok bool) {
	s := envelopeScanner{data: data}
	if !s.consume('{') {
		return Envelope{}, false
	}
	seen := 0
	for first := true; ; first = false {
		if first && s.consume('}') {
			return Envelope{}, false // {}: left to encoding/json, nothing to gain
		}
		if !first && s.consume('}') {
			break
		}
		if !first && !s.consume(',') {
			return Envelope{}, false
		}
		bit, ok := s.member(&e)
		if !ok || seen&bit != 0 {
			return Envelope{}, false
		}
		seen |= bit
	}
	s.skipSpace()
	return e, s.i == len(s.data)
}

// member reads one "name": value pair into e and returns the member's bit.
func (s *envelopeScanner) member(e *Envelope) (int, bool) {
	name, ok := s.str()
	if !ok || !s.consume(':') {
		return 0, false
	}
	if string(name) == "v" {
		n, ok := s.smallInt()
		e.V = n
		return memberV, ok
	}
	val, ok := s.str()
	if !ok {
		return 0, false
	}
	switch string(name) {
	case "id":
		e.ID = string(val)
		return memberID, true
	case "text":
		e.Text = string(val)
		return memberText, true
	case "submitted_at":
		// Exactly what Time.UnmarshalJSON does with the bytes between
		// the quotes (it does not unescape either).
		return memberSubmittedAt, e.SubmittedAt.UnmarshalText(val) == nil
	case "request_id":
		e.RequestID = string(val)
		return memberRequestID, true
	case "traceparent":
		e.Traceparent = string(val)
		return memberTraceparent, true
	case "tracestate":
		e.Tracestate = string(val)
		return memberTracestate, true
	}
	return 0, false
}
