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

func TestDecodeEnvelopeRejectsMalformed(t *testing.T) {
	const id = `"01890a5d-ac96-774b-bcce-b302099a8057"`
	const at = `"2026-01-02T03:04:05Z"`
	for name, in := range map[string]string{
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
		"unknown field":   `{"v":1,"id":` + id + `,"text":"Go","submitted_at":` + at + `,"x":1}`,
		"trailing data":   `{"v":1,"id":` + id + `,"text":"Go","submitted_at":` + at + `} {}`,
		"bad request id":  `{"v":1,"id":` + id + `,"text":"Go","submitted_at":` + at + `,"request_id":"a b\n"}`,
		"too long text":   `{"v":1,"id":` + id + `,"text":"` + strings.Repeat("a", 201) + `","submitted_at":` + at + `}`,
	} {
		if _, err := DecodeEnvelope([]byte(in)); err == nil {
			t.Errorf("%s: DecodeEnvelope(%s) = nil error, want one", name, in)
		}
	}
}
