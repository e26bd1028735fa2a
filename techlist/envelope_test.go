package techlist

import (
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
	}
}()

func TestDecodeEnvelopeRejectsMalformed(t *testing.T) {
	for name, in := range malformedEnvelopes {
		if _, err := DecodeEnvelope([]byte(in)); err == nil {
			t.Errorf("%s: DecodeEnvelope(%s) = nil error, want one", name, in)
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
