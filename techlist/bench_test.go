package techlist

import (
	"testing"
	"time"
)

func BenchmarkEnvelopeEncode(b *testing.B) {
	env := NewEnvelope("01890a5d-ac96-774b-bcce-b302099a8057", "Redis Streams with consumer groups", time.Now())
	b.ReportAllocs()
	for b.Loop() {
		if _, err := env.Encode(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeEnvelope(b *testing.B) {
	msg, _ := NewEnvelope("01890a5d-ac96-774b-bcce-b302099a8057", "Redis Streams with consumer groups", time.Now()).Encode()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeEnvelope(msg); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkValidateText(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ValidateText("  Redis Streams with consumer groups 🚀  "); err != nil {
			b.Fatal(err)
		}
	}
}
