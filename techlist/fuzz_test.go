package techlist

import (
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"
)

// The fuzz targets below cover every decoder of outside input in this
// module. `go test` runs their seeds as ordinary tests; .ci/run runs each
// with -fuzz for a bounded time. Each checks properties, not just "no
// panic": what a decoder accepts is what the rest of the code relies on.

const fuzzID = "01890a5d-ac96-774b-bcce-b302099a8057"

func FuzzDecodeEnvelope(f *testing.F) {
	for _, in := range malformedEnvelopes {
		f.Add([]byte(in))
	}
	ok, err := NewEnvelope(fuzzID, "Go 🚀 <b>", time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)).Encode()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(ok)
	f.Add([]byte(`{"v":1,"id":"` + fuzzID + `","text":"Go","submitted_at":"2026-01-02T03:04:05Z","request_id":"a/b:c","x":[1]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := DecodeEnvelope(data)
		if err != nil {
			return
		}
		checkAccepted(t, e.ID, e.Text)
		if !ValidV7ID(e.ID) {
			t.Fatalf("accepted id %q, not a UUIDv7", e.ID)
		}
		if e.SubmittedAt.After(time.Now().Add(MaxClockSkew)) {
			t.Fatalf("accepted submitted_at %s, beyond the clock skew", e.SubmittedAt)
		}
		if e.V != EnvelopeVersion || e.SubmittedAt.IsZero() {
			t.Fatalf("accepted %+v from %q: version or time missing", e, data)
		}
		if e.RequestID != "" && !ValidRequestID(e.RequestID) {
			t.Fatalf("accepted request id %q", e.RequestID)
		}
		// What was accepted survives a round trip unchanged.
		b, err := e.Encode()
		if err != nil {
			t.Fatalf("encode %+v: %v", e, err)
		}
		again, err := DecodeEnvelope(b)
		if err != nil || again.ID != e.ID || again.Text != e.Text || !again.SubmittedAt.Equal(e.SubmittedAt) || again.RequestID != e.RequestID {
			t.Fatalf("round trip of %q: got %+v, %v; want %+v", data, again, err, e)
		}
	})
}

func FuzzDecodeEvent(f *testing.F) {
	f.Add([]byte(`{"type":"tech.created","tech":{"id":"` + fuzzID + `","text":"Go","priority":"high","created_at":"2025-01-02T03:04:05Z","submitted_at":"2025-01-02T03:04:04Z"}}`))
	f.Add([]byte(`{"type":"tech.created","tech":{"id":"` + fuzzID + `","text":"<script>","priority":"low","created_at":"2025-01-02T03:04:05Z"},"trace":{}}`))
	f.Add([]byte(`{"type":"tech.deleted"}`))
	f.Add([]byte(`{"type":"tech.created","tech":{"id":"` + fuzzID + `","text":"a\u0007b","priority":"low","created_at":"2025-01-02T03:04:05Z"}}`))
	f.Add([]byte(`nope`))
	f.Fuzz(func(t *testing.T, data []byte) {
		ev, err := DecodeEvent(data)
		if err != nil {
			return
		}
		if ev.Type != EventTechCreated || !ev.Tech.Priority.Valid() || ev.Tech.CreatedAt.IsZero() {
			t.Fatalf("accepted %+v from %q", ev, data)
		}
		if !ValidID(ev.Tech.ID) {
			t.Fatalf("accepted id %q", ev.Tech.ID)
		}
		if _, err := ValidateText(ev.Tech.Text); err != nil {
			t.Fatalf("accepted text %q: %v", ev.Tech.Text, err)
		}
	})
}

func FuzzValidateText(f *testing.F) {
	for _, s := range []string{"Go", "  Go  ", "", " \t\n", "a\x00b", "a\xffb", "\u0085", "🚀", "\uFEFFGo", "\u200b", "\u2060\u2060", "\u200e", "a\u202eb", "\u2067x\u2069", "\u3164", "👩\u200d💻",
		strings.Repeat("a", 200), strings.Repeat("🚀", 201), "'; DROP TABLE techlist; --", "<script>alert(1)</script>"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		text, err := ValidateText(in)
		if err != nil {
			if text != "" {
				t.Fatalf("ValidateText(%q) returned %q with an error", in, text)
			}
			return
		}
		checkAccepted(t, fuzzID, text)
		if strings.TrimSpace(in) != text {
			t.Fatalf("ValidateText(%q) = %q, want the input trimmed", in, text)
		}
		if again, err := ValidateText(text); err != nil || again != text {
			t.Fatalf("ValidateText is not idempotent on %q: %q, %v", text, again, err)
		}
	})
}

// FuzzValidID covers the cursor and the {id} in a path: whatever passes
// is a canonical lowercase UUID, safe in a Redis key and a SQL parameter.
func FuzzValidID(f *testing.F) {
	for _, s := range []string{fuzzID, strings.ToUpper(fuzzID), "", "1; DROP TABLE techlist", fuzzID + " ", "../../etc/passwd",
		"01890a5d-ac96-774b-bcce-b302099a805g", "01890a5dac96774bbcceb302099a8057----"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		if !ValidID(id) {
			return
		}
		if len(id) != 36 || strings.Count(id, "-") != 4 || strings.ToLower(id) != id {
			t.Fatalf("ValidID(%q) = true", id)
		}
		for _, c := range strings.ReplaceAll(id, "-", "") {
			if !strings.ContainsRune("0123456789abcdef", c) {
				t.Fatalf("ValidID(%q) = true with %q", id, c)
			}
		}
	})
}

// FuzzValidRequestID covers the X-Request-Id header: whatever passes goes
// into log lines, a response header and the envelope as it is.
func FuzzValidRequestID(f *testing.F) {
	for _, s := range []string{"abc-123", "host/abc-000001", "", "a b", "a\nb", "a\r\nSet-Cookie: x=1", strings.Repeat("a", 65), "<script>", "é"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		if !ValidRequestID(id) {
			return
		}
		if len(id) == 0 || len(id) > 64 {
			t.Fatalf("ValidRequestID(%q) = true for length %d", id, len(id))
		}
		for _, c := range id {
			if c > unicode.MaxASCII || !(unicode.IsLetter(c) || unicode.IsDigit(c) || strings.ContainsRune("._:/-", c)) {
				t.Fatalf("ValidRequestID(%q) = true with %q", id, c)
			}
		}
	})
}

// checkAccepted fails unless id and text are what the contract allows to
// be stored.
func checkAccepted(t *testing.T, id, text string) {
	t.Helper()
	if !ValidID(id) {
		t.Fatalf("accepted id %q", id)
	}
	if !utf8.ValidString(text) || text == "" || utf8.RuneCountInString(text) > MaxTextLength || strings.TrimSpace(text) != text {
		t.Fatalf("accepted text %q", text)
	}
	seen := false
	for _, r := range text {
		if unicode.IsControl(r) {
			t.Fatalf("accepted text %q with control character %U", text, r)
		}
		if '\u202A' <= r && r <= '\u202E' || '\u2066' <= r && r <= '\u2069' {
			t.Fatalf("accepted text %q with bidi control %U", text, r)
		}
		seen = seen || unicode.In(r, unicode.L, unicode.M, unicode.N, unicode.P, unicode.S) &&
			!unicode.In(r, unicode.Other_Default_Ignorable_Code_Point, unicode.Variation_Selector)
	}
	if !seen {
		t.Fatalf("accepted text %q with nothing visible", text)
	}
}
