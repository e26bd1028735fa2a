package techlist

import (
	"reflect"
	"testing"
	"time"
)

// envelopeFastSeeds are inputs around the fast path's edges: what it takes
// and what it must leave to encoding/json.
var envelopeFastSeeds = []string{
	`{"v":1,"id":"` + fuzzID + `","text":"Go","submitted_at":"2026-01-02T03:04:05.123456Z"}`,
	` { "v" : 1 , "id" : "` + fuzzID + `" , "text" : "Go 🚀" , "submitted_at" : "2026-01-02T03:04:05+02:00" } ` + "\n",
	`{"v":1,"id":"` + fuzzID + `","text":"Go","submitted_at":"2026-01-02T03:04:05Z","request_id":"r-1","traceparent":"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01","tracestate":"a=b"}`,
	`{"v":1,"id":"` + fuzzID + `","text":"\u003cb\u003e","submitted_at":"2026-01-02T03:04:05Z"}`,
	`{"v":1,"id":"` + fuzzID + `","text":"Go","text":"Rust","submitted_at":"2026-01-02T03:04:05Z"}`,
	`{"V":1,"ID":"` + fuzzID + `","Text":"Go","submitted_at":"2026-01-02T03:04:05Z"}`,
	`{"v":1,"id":"` + fuzzID + `","text":"Go","submitted_at":"2026-01-02T03:04:05Z","x":[1,{"y":null}]}`,
	`{"v":1.0,"id":"` + fuzzID + `","text":"Go","submitted_at":"2026-01-02T03:04:05Z"}`,
	`{"v":01,"id":"x","text":"Go","submitted_at":"2026-01-02T03:04:05Z"}`,
	`{"v":1,"id":null,"text":"Go","submitted_at":"2026-01-02T03:04:05Z"}`,
	`{"v":1,"id":"x","text":"Go","submitted_at":"2026-01-02 03:04:05Z"}`,
	`{"v":1,"id":"x","text":"Go","submitted_at":"2026-01-02T03:04:05Z"}]`,
	`{"v":1,"id":"x","text":"Go","submitted_at":"2026-01-02T03:04:05Z"} {}`,
	`{"v":1,"id":"x","text":"Go",}`,
	"{\"v\":1,\"id\":\"x\",\"text\":\"\xff\"}",
	"{\"v\":1,\"text\":\"a\tb\"}",
	`{"v":9999999,"id":"x"}`,
	`{}`, `{`, `[]`, `null`, ``, `"v"`,
}

// The fast path and encoding/json read every input the same way: when the
// fast path takes an input, encoding/json accepts it and gives the same
// envelope.
func FuzzEnvelopeFastPath(f *testing.F) {
	for _, s := range envelopeFastSeeds {
		f.Add([]byte(s))
	}
	for _, s := range malformedEnvelopes {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fast, ok := parseEnvelopeFast(data)
		if !ok {
			return
		}
		slow, err := parseEnvelopeJSON(data)
		if err != nil {
			t.Fatalf("fast path took %q, encoding/json refused it: %v", data, err)
		}
		if !sameEnvelope(fast, slow) {
			t.Fatalf("%q: fast path %+v, encoding/json %+v", data, fast, slow)
		}
	})
}

func sameEnvelope(a, b Envelope) bool {
	_, aOff := a.SubmittedAt.Zone()
	_, bOff := b.SubmittedAt.Zone()
	ta, tb := a.SubmittedAt, b.SubmittedAt
	a.SubmittedAt, b.SubmittedAt = time.Time{}, time.Time{}
	return ta.Equal(tb) && aOff == bOff && reflect.DeepEqual(a, b)
}

// What the api-server writes takes the fast path; what it would not write
// (escapes aside) is left to encoding/json.
func TestEnvelopeFastPathTakesTheAPIServersEnvelopes(t *testing.T) {
	env := NewEnvelope(fuzzID, "Redis Streams 🚀", time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.UTC))
	env.RequestID = "req-1"
	env.TraceContext = TraceContext{Traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", Tracestate: "a=b"}
	for _, e := range []Envelope{NewEnvelope(fuzzID, "Go", time.Now()), env} {
		b, err := e.Encode()
		if err != nil {
			t.Fatal(err)
		}
		got, ok := parseEnvelopeFast(b)
		if !ok || !sameEnvelope(got, e) {
			t.Errorf("fast path of %s: got %+v, %v; want %+v, true", b, got, ok, e)
		}
	}
	for _, s := range envelopeFastSeeds[3:] {
		if _, ok := parseEnvelopeFast([]byte(s)); ok {
			t.Errorf("fast path took %q, want it left to encoding/json", s)
		}
	}
}
