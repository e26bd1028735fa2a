package techlist

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestEnvelopeRoundTrip(t *testing.T) {
	want := NewEnvelope("01890a5d-ac96-774b-bcce-b302099a8057", "Go 🚀 <b>", time.Date(2026, 1, 2, 3, 4, 5, 6000, time.FixedZone("x", 3600)))
	want.RequestID = "host/abc-000001"
	b, err := want.Encode()
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeEnvelope(b)
	if err != nil {
		t.Fatalf("DecodeEnvelope(%s): %v", b, err)
	}
	if got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

// malformedEnvelopes are messages anyone who reaches Redis could put on the
// queue; each must be refused. They also seed FuzzDecodeEnvelope.
var malformedEnvelopes = func() map[string]string {
	const id = `"01890a5d-ac96-774b-bcce-b302099a8057"`
	const at = `"2026-01-02T03:04:05Z"`
	return map[string]string{
		"not json":        `hello`,
		"array":           `[1,2]`,
		"wrong version":   `{"v":2,"id":` + id + `,"text":"Go","submitted_at":` + at + `}`,
		"missing version": `{"id":` + id + `,"text":"Go","submitted_at":` + at + `}`,
		"bad id":          `{"v":1,"id":"1; DROP","text":"Go","submitted_at":` + at + `}`,
		"empty text":      `{"v":1,"id":` + id + `,"text":"","submitted_at":` + at + `}`,
		"untrimmed text":  `{"v":1,"id":` + id + `,"text":" Go","submitted_at":` + at + `}`,
		"control char":    `{"v":1,"id":` + id + `,"text":"a\u0000b","submitted_at":` + at + `}`,
		"text not string": `{"v":1,"id":` + id + `,"text":5,"submitted_at":` + at + `}`,
		"no time":         `{"v":1,"id":` + id + `,"text":"Go"}`,
		"trailing data":   `{"v":1,"id":` + id + `,"text":"Go","submitted_at":` + at + `} {}`,
		"bad request id":  `{"v":1,"id":` + id + `,"text":"Go","submitted_at":` + at + `,"request_id":"a b\n"}`,
		"too long text":   `{"v":1,"id":` + id + `,"text":"` + strings.Repeat("a", 201) + `","submitted_at":` + at + `}`,
		"invisible text":  `{"v":1,"id":` + id + `,"text":"\u200b","submitted_at":` + at + `}`,
		"bidi override":   `{"v":1,"id":` + id + `,"text":"a\u202eb","submitted_at":` + at + `}`,
		// Well-formed UUIDs the api-server never makes.
		"nil id":             `{"v":1,"id":"00000000-0000-0000-0000-000000000000","text":"Go","submitted_at":` + at + `}`,
		"v4 id":              `{"v":1,"id":"9b2f4c1e-7d3a-4e5b-9c8d-0a1b2c3d4e5f","text":"Go","submitted_at":` + at + `}`,
		"v7 id, bad variant": `{"v":1,"id":"01890a5d-ac96-774b-4cce-b302099a8057","text":"Go","submitted_at":` + at + `}`,
		// A time no host with a roughly right clock stamped.
		"submitted in 2099": `{"v":1,"id":` + id + `,"text":"Go","submitted_at":"2099-01-01T00:00:00Z"}`,
	}
}()

func TestDecodeEnvelopeRejectsMalformed(t *testing.T) {
	for name, in := range malformedEnvelopes {
		if _, err := DecodeEnvelope([]byte(in)); err == nil {
			t.Errorf("%s: DecodeEnvelope(%s) = nil error, want one", name, in)
		}
	}
}

// submitted_at may be ahead of the reader's clock by MaxClockSkew (the
// api-server's host may run a little ahead), not more.
func TestDecodeEnvelopeBoundsClockSkew(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tt := range []struct {
		ahead time.Duration
		ok    bool
	}{
		{-time.Hour, true},
		{0, true},
		{MaxClockSkew, true},
		{MaxClockSkew + time.Second, false},
		{73 * 365 * 24 * time.Hour, false},
	} {
		in := NewEnvelope("01890a5d-ac96-774b-bcce-b302099a8057", "Go", now.Add(tt.ahead))
		b, err := in.Encode()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := decodeEnvelopeAt(b, now); (err == nil) != tt.ok {
			t.Errorf("submitted_at %s ahead of the reader: got error %v, want accepted %v", tt.ahead, err, tt.ok)
		}
	}
}

func TestValidV7ID(t *testing.T) {
	for id, want := range map[string]bool{
		"01890a5d-ac96-774b-bcce-b302099a8057": true,
		"01890a5d-ac96-774b-8cce-b302099a8057": true,
		"01890a5d-ac96-774b-acce-b302099a8057": true,
		"00000000-0000-0000-0000-000000000000": false,
		"9b2f4c1e-7d3a-4e5b-9c8d-0a1b2c3d4e5f": false, // v4
		"01890a5d-ac96-774b-ccce-b302099a8057": false, // Microsoft variant
		"01890a5d-ac96-774b-7cce-b302099a8057": false, // NCS variant
		"01890A5D-AC96-774B-BCCE-B302099A8057": false, // not canonical
		"01890a5d-ac96-774b-bcce-b302099a805":  false,
	} {
		if got := ValidV7ID(id); got != want {
			t.Errorf("ValidV7ID(%q): got %v, want %v", id, got, want)
		}
	}
}

// The contract: readers ignore members they do not know, so a newer
// producer's optional members (a trace context, say) keep v:1 readers
// working.
func TestDecodeEnvelopeIgnoresUnknownMembers(t *testing.T) {
	in := `{"v":1,"id":"01890a5d-ac96-774b-bcce-b302099a8057","text":"Go","submitted_at":"2026-01-02T03:04:05Z","trace":{"traceparent":"00-x"},"x":1}`
	e, err := DecodeEnvelope([]byte(in))
	if err != nil {
		t.Fatalf("DecodeEnvelope(%s): %v, want it accepted", in, err)
	}
	if e.Text != "Go" {
		t.Errorf("text: got %q, want %q", e.Text, "Go")
	}
}

// The trace context is an optional hint: a well-formed one is kept, a
// malformed one is dropped, and either way the message is accepted.
func TestDecodeEnvelopeTraceContext(t *testing.T) {
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	const base = `{"v":1,"id":"01890a5d-ac96-774b-bcce-b302099a8057","text":"Go","submitted_at":"2026-01-02T03:04:05Z"`
	for _, tc := range []struct {
		name, members string
		want          TraceContext
	}{
		{"none", ``, TraceContext{}},
		{"traceparent", `,"traceparent":"` + tp + `"`, TraceContext{Traceparent: tp}},
		{"both", `,"traceparent":"` + tp + `","tracestate":"k=v"`, TraceContext{Traceparent: tp, Tracestate: "k=v"}},
		{"malformed traceparent", `,"traceparent":"00-` + strings.Repeat("g", 32) + `-00f067aa0ba902b7-01","tracestate":"k=v"`, TraceContext{}},
		{"uppercase traceparent", `,"traceparent":"` + strings.ToUpper(tp) + `"`, TraceContext{}},
		{"control in tracestate", `,"traceparent":"` + tp + `","tracestate":"k=v\n"`, TraceContext{Traceparent: tp}},
		{"long tracestate", `,"traceparent":"` + tp + `","tracestate":"` + strings.Repeat("a", 513) + `"`, TraceContext{Traceparent: tp}},
	} {
		e, err := DecodeEnvelope([]byte(base + tc.members + `}`))
		if err != nil {
			t.Errorf("%s: %v, want the envelope accepted", tc.name, err)
			continue
		}
		if e.TraceContext != tc.want {
			t.Errorf("%s: trace context %+v, want %+v", tc.name, e.TraceContext, tc.want)
		}
	}
	ev, err := DecodeEvent([]byte(`{"type":"tech.created","tech":{"id":"01890a5d-ac96-774b-bcce-b302099a8057","text":"Go","priority":"low","created_at":"2026-01-02T03:04:05Z"},"traceparent":"` + tp + `","tracestate":"\u0000"}`))
	if err != nil || ev.TraceContext != (TraceContext{Traceparent: tp}) {
		t.Errorf("event: got %+v, %v; want the traceparent kept and the bad tracestate dropped", ev.TraceContext, err)
	}
}

func TestEnvelopeEncodeIsMarshal(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 123456000, time.UTC)
	traced := TraceContext{Traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", Tracestate: "a=b"}
	var envs []Envelope
	for _, text := range []string{"Go", `<script>alert("x")</script> & co`, "tab\there", "emoji 🚀 and é", "line\u2028sep", "back\\slash", "\xff bad", ""} {
		e := NewEnvelope(fuzzID, text, at)
		envs = append(envs, e)
		e.RequestID, e.TraceContext = "req-"+text, traced
		envs = append(envs, e)
	}
	zoned := NewEnvelope(fuzzID, "Go", at)
	zoned.SubmittedAt = at.In(time.FixedZone("", 2*60*60))
	envs = append(envs, zoned, Envelope{}, Envelope{V: -3, TraceContext: TraceContext{Tracestate: "x"}})
	for _, e := range envs {
		want, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := e.Encode(); err != nil || !bytes.Equal(got, want) {
			t.Errorf("Encode of %+v:\n got %s, %v\nwant %s", e, got, err, want)
		}
	}
	if _, err := NewEnvelope(fuzzID, "Go", time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)).Encode(); err == nil {
		t.Error("Encode of a year past 9999: got no error, want one, as json.Marshal gives")
	}
}

func FuzzEnvelopeEncode(f *testing.F) {
	f.Add(1, "Go", "req-1", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", int64(1767323045123456789))
	f.Add(0, "<b>\"q\"\u2028\x01", "", "", int64(0))
	f.Fuzz(func(t *testing.T, v int, text, requestID, traceparent string, nanos int64) {
		e := Envelope{V: v, ID: text, Text: text, SubmittedAt: time.Unix(0, nanos).UTC(), RequestID: requestID,
			TraceContext: TraceContext{Traceparent: traceparent, Tracestate: requestID}}
		want, werr := json.Marshal(e)
		got, gerr := e.Encode()
		if (werr == nil) != (gerr == nil) || werr == nil && !bytes.Equal(got, want) {
			t.Fatalf("Encode: %s, %v; json.Marshal: %s, %v", got, gerr, want, werr)
		}
	})
}

// Text the API refuses in a POST body is refused in an envelope too, even
// though encoding/json reads it (as U+FFFD); a real U+FFFD and an escaped
// surrogate pair are text like any other.
func TestDecodeEnvelopeRefusesTextTheAPIRefuses(t *testing.T) {
	env := func(text string) []byte {
		return []byte(`{"v":1,"id":"` + fuzzID + `","text":"` + text + `","submitted_at":"2026-01-02T03:04:05Z"}`)
	}
	for _, text := range []string{`a\ud800`, `\udc00b`, `a\ud800\u0041`, "a\xffb", "a\xed\xa0\x80"} {
		if e, err := DecodeEnvelope(env(text)); err == nil {
			t.Errorf("text %q: got %q, want an error", text, e.Text)
		}
	}
	for text, want := range map[string]string{"a\uFFFD": "a\uFFFD", `a\ufffd`: "a\uFFFD", `\ud83d\ude80`: "🚀"} {
		if e, err := DecodeEnvelope(env(text)); err != nil || e.Text != want {
			t.Errorf("text %q: got %q, %v; want %q", text, e.Text, err, want)
		}
	}
}
