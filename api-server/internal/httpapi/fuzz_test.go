package httpapi

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/techlist/techlist"
)

// The fuzz targets of this package's decoders of outside input: the POST
// bodies, the list query (limit and cursor) and the Idempotency-Key header
// (the X-Request-Id header's target, FuzzRequestID, is in techlist/service,
// beside the middleware). Each refusal must be a client error the API
// answers with 4xx, never an internal one; each acceptance must be valid.

// FuzzDecodeText feeds the POST body decoder, seeded with the hostile
// bodies of TestCreateHostileInput, under both media types.
func FuzzDecodeText(f *testing.F) {
	for _, h := range hostileCreates {
		if len(h.body) < 4096 {
			f.Add(h.contentType == formType, h.body)
		}
	}
	f.Fuzz(func(t *testing.T, form bool, body string) {
		ct := jsonType
		if form {
			ct = formType
		}
		r := httptest.NewRequest(http.MethodPost, "/api/v1/techs", strings.NewReader(body))
		r.Header.Set("Content-Type", ct)
		text, err := decodeText(httptest.NewRecorder(), r, testMaxBody)
		if err != nil {
			checkClientError(t, err, body)
			return
		}
		if valid, err := techlist.ValidateText(text); err != nil || valid != text {
			t.Fatalf("decodeText(%q) accepted %q, which does not validate: %v", body, text, err)
		}
	})
}

// FuzzJSONFastPath: whatever body the fast path takes, the full reading
// takes too, with the same text.
func FuzzJSONFastPath(f *testing.F) {
	for _, s := range []string{`{"text":"Go"}`, " {\t\"text\" :\r\n\"Go 🚀\" }\n", `{"text":"a\"b"}`, `{"text":"Go","text":"Rust"}`,
		`{"text":"Go"}x`, `{"text":"Go"`, `{"Text":"Go"}`, "{\"text\":\"a\x01b\"}", `{"text":"\u00e9"}`, `{"text":""}`} {
		f.Add([]byte(s))
	}
	for _, h := range hostileCreates {
		if h.contentType == jsonType && len(h.body) < 4096 {
			f.Add([]byte(h.body))
		}
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if !utf8.Valid(body) {
			return // textFromJSON refuses it before either reading
		}
		fast, ok := textFromJSONFast(body)
		if !ok {
			return
		}
		full, err := textFromJSONTokens(body)
		if err != nil || full != fast {
			t.Fatalf("%q: fast path took %q, the full reading gave %q, %v", body, fast, full, err)
		}
	})
}

// The fast path takes what clients send, so the fuzz target above checks
// the path POSTs really take.
func TestJSONFastPathTakesClientBodies(t *testing.T) {
	for _, body := range []string{`{"text":"Go"}`, `{"text": "Redis Streams with consumer groups"}`, "{\n  \"text\": \"Go 🚀\"\n}\n"} {
		if _, ok := textFromJSONFast([]byte(body)); !ok {
			t.Errorf("the fast path did not take %q", body)
		}
	}
}

// FuzzPageQuery feeds ?limit and ?cursor.
func FuzzPageQuery(f *testing.F) {
	for _, q := range []string{"", "limit=1", "limit=100", "limit=101", "limit=-1", "limit=1e3", "limit=%00",
		"cursor=01890a5d-ac96-774b-bcce-b302099a8057", "cursor=x", "cursor=%27%3B--", "limit=2&cursor=" + strings.Repeat("a", 5000),
		"limit=2&limit=3", "cursor=01890A5D-AC96-774B-BCCE-B302099A8057"} {
		f.Add(q)
	}
	f.Fuzz(func(t *testing.T, query string) {
		r := httptest.NewRequest(http.MethodGet, "/api/v1/techs", nil)
		r.URL.RawQuery = query
		limit, cursor, err := pageQuery(r)
		if err != nil {
			checkClientError(t, err, query)
			return
		}
		if limit < 1 || limit > maxLimit {
			t.Fatalf("pageQuery(%q) accepted limit %d", query, limit)
		}
		if cursor != "" && !techlist.ValidID(cursor) {
			t.Fatalf("pageQuery(%q) accepted cursor %q", query, cursor)
		}
	})
}

// FuzzIdempotencyKey feeds the Idempotency-Key header: what passes is 1 to
// 255 printable ASCII characters.
func FuzzIdempotencyKey(f *testing.F) {
	for _, k := range []string{"", "k", "order-1", strings.Repeat("k", 255), strings.Repeat("k", 256), "a\x00b", "a\nb", "é", "\x7f", " "} {
		f.Add(k, false)
		f.Add(k, true)
	}
	f.Fuzz(func(t *testing.T, key string, twice bool) {
		r := httptest.NewRequest(http.MethodPost, "/api/v1/techs", nil)
		r.Header["Idempotency-Key"] = []string{key}
		if twice {
			r.Header.Add("Idempotency-Key", key)
		}
		got, err := idempotencyKey(r)
		if err != nil {
			checkClientError(t, err, key)
			return
		}
		if twice || got != key || len(got) < 1 || len(got) > 255 {
			t.Fatalf("idempotencyKey(%q, twice=%v) = %q", key, twice, got)
		}
		for i := 0; i < len(got); i++ {
			if got[i] < 0x20 || got[i] >= 0x7f {
				t.Fatalf("idempotencyKey accepted %q with byte %#x", got, got[i])
			}
		}
	})
}

// checkClientError fails unless err is one the API answers with a 4xx.
func checkClientError(t *testing.T, err error, input string) {
	t.Helper()
	var e *techlist.Error
	if !errors.As(err, &e) {
		t.Fatalf("input %q: got %v, not a *techlist.Error (it would be a 500)", input, err)
	}
	if status := statusOf[e.Code]; status < 400 || status > 499 {
		t.Fatalf("input %q: code %q answers %d, want a 4xx", input, e.Code, status)
	}
	if e.Message == "" {
		t.Fatalf("input %q: error without a message", input)
	}
}
