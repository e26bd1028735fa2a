package httpapi

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/techlist/techlist"
)

const (
	jsonType = "application/json"
	formType = "application/x-www-form-urlencoded"
	noField  = "-" // the error names no field, or it does not matter which
)

// hostileCreate is one POST body a client might send, and what the API
// must answer. The table drives TestCreateHostileInput and seeds the fuzz
// targets of the body decoders.
type hostileCreate struct {
	name, contentType, body string
	status                  int
	code                    string // for errors
	field                   string // for errors: the field named, or noField
	text                    string // for 202: the exact text published
}

var hostileCreates = []hostileCreate{
	// Missing or empty text.
	{"empty body", jsonType, ``, 400, techlist.EInvalid, noField, ""},
	{"empty object", jsonType, `{}`, 400, techlist.EInvalid, "text", ""},
	{"empty text", jsonType, `{"text":""}`, 400, techlist.EInvalid, "text", ""},
	{"whitespace only", jsonType, `{"text":"   \t \n  "}`, 400, techlist.EInvalid, "text", ""},
	{"form without text", formType, `name=Go`, 400, techlist.EInvalid, "text", ""},
	{"empty form", formType, ``, 400, techlist.EInvalid, "text", ""},

	// Length, counted in characters.
	{"201 chars", jsonType, `{"text":"` + strings.Repeat("a", 201) + `"}`, 400, techlist.EInvalid, "text", ""},
	{"200 chars", jsonType, `{"text":"` + strings.Repeat("a", 200) + `"}`, 202, "", "", strings.Repeat("a", 200)},
	{"200 chars once trimmed", jsonType, `{"text":"  ` + strings.Repeat("b", 200) + `  "}`, 202, "", "", strings.Repeat("b", 200)},
	{"200 emoji", jsonType, `{"text":"` + strings.Repeat("🚀", 200) + `"}`, 202, "", "", strings.Repeat("🚀", 200)},
	{"201 emoji", jsonType, `{"text":"` + strings.Repeat("🚀", 201) + `"}`, 400, techlist.EInvalid, "text", ""},
	{"10 MB body", jsonType, `{"text":"` + strings.Repeat("a", 10<<20) + `"}`, 413, techlist.ETooLarge, noField, ""},
	{"10 MB form", formType, "text=" + strings.Repeat("a", 10<<20), 413, techlist.ETooLarge, noField, ""},

	// Encodings.
	{"invalid UTF-8 bytes", jsonType, "{\"text\":\"a\xffb\"}", 400, techlist.EInvalid, "text", ""},
	{"invalid UTF-8 outside the string", jsonType, "{\"text\":\"a\"}\xff", 400, techlist.EInvalid, noField, ""},
	{"invalid UTF-8 in a form", formType, "text=a%FFb", 400, techlist.EInvalid, "text", ""},
	{"lone high surrogate", jsonType, `{"text":"\ud800"}`, 400, techlist.EInvalid, "text", ""},
	{"lone low surrogate", jsonType, `{"text":"a\uDC00b"}`, 400, techlist.EInvalid, "text", ""},
	{"lone surrogate beside an escaped U+FFFD", jsonType, `{"text":"\ufffd\ud800"}`, 400, techlist.EInvalid, "text", ""},
	{"lone surrogate beside a literal U+FFFD", jsonType, `{"text":"` + "\uFFFD" + `\ud800"}`, 400, techlist.EInvalid, "text", ""},
	{"reversed surrogate pair", jsonType, `{"text":"\ude80\ud83d"}`, 400, techlist.EInvalid, "text", ""},
	{"high surrogate then a plain escape", jsonType, `{"text":"\ud800\u0041"}`, 400, techlist.EInvalid, "text", ""},
	{"two high surrogates", jsonType, `{"text":"\ud800\ud800"}`, 400, techlist.EInvalid, "text", ""},
	{"pair then a lone surrogate", jsonType, `{"text":"\ud83d\ude80\ud800"}`, 400, techlist.EInvalid, "text", ""},
	{"escaped backslash then a lone surrogate", jsonType, `{"text":"\\\ud800"}`, 400, techlist.EInvalid, "text", ""},
	{"escaped U+FFFD accepted verbatim", jsonType, `{"text":"\ufffd"}`, 202, "", "", "\uFFFD"},
	{"literal U+FFFD accepted verbatim", jsonType, `{"text":"a` + "\uFFFD" + `b"}`, 202, "", "", "a\uFFFDb"},
	{"escaped surrogate pair", jsonType, `{"text":"\ud83d\ude80"}`, 202, "", "", "🚀"},
	{"escaped backslash then u", jsonType, `{"text":"\\ud800"}`, 202, "", "", `\ud800`},
	{"byte order mark", jsonType, "\xEF\xBB\xBF{\"text\":\"Go\"}", 400, techlist.EInvalid, noField, ""},

	// Control characters.
	{"NUL", jsonType, `{"text":"a\u0000b"}`, 400, techlist.EInvalid, "text", ""},
	{"tab inside", jsonType, `{"text":"a\tb"}`, 400, techlist.EInvalid, "text", ""},
	{"newline inside", jsonType, `{"text":"a\nb"}`, 400, techlist.EInvalid, "text", ""},
	{"ESC", jsonType, `{"text":"a\u001b[31mred"}`, 400, techlist.EInvalid, "text", ""},
	{"DEL", jsonType, `{"text":"a\u007fb"}`, 400, techlist.EInvalid, "text", ""},
	{"C1 control NEL", jsonType, `{"text":"a\u0085b"}`, 400, techlist.EInvalid, "text", ""},
	{"NUL in a form", formType, `text=a%00b`, 400, techlist.EInvalid, "text", ""},
	{"newline in a form", formType, `text=a%0Ab`, 400, techlist.EInvalid, "text", ""},

	// Invisible texts, and bidi controls that reorder what is shown (Trojan Source).
	{"zero width space only", jsonType, `{"text":"\u200b"}`, 400, techlist.EInvalid, "text", ""},
	{"byte order mark only", jsonType, `{"text":"\ufeff"}`, 400, techlist.EInvalid, "text", ""},
	{"word joiners only", jsonType, `{"text":"\u2060\u2060"}`, 400, techlist.EInvalid, "text", ""},
	{"left-to-right mark only", jsonType, `{"text":"\u200e"}`, 400, techlist.EInvalid, "text", ""},
	{"right-to-left override only", jsonType, `{"text":"\u202e"}`, 400, techlist.EInvalid, "text", ""},
	{"right-to-left override inside", jsonType, `{"text":"a\u202eb"}`, 400, techlist.EInvalid, "text", ""},
	{"right-to-left isolate inside", jsonType, `{"text":"a\u2067b\u2069"}`, 400, techlist.EInvalid, "text", ""},
	{"hangul filler only", jsonType, `{"text":"\u3164"}`, 400, techlist.EInvalid, "text", ""},
	{"zero width space only in a form", formType, `text=%E2%80%8B`, 400, techlist.EInvalid, "text", ""},
	{"right-to-left override in a form", formType, `text=a%E2%80%AEb`, 400, techlist.EInvalid, "text", ""},
	{"emoji ZWJ sequence", jsonType, `{"text":"\ud83d\udc69\u200d\ud83d\udcbb"}`, 202, "", "", "👩\u200d💻"},
	{"left-to-right mark in Hebrew", jsonType, `{"text":"Go \u200e` + "שלום" + `"}`, 202, "", "", "Go \u200eשלום"},

	// Injection attempts are data, kept verbatim.
	{"SQL injection", jsonType, `{"text":"'; DROP TABLE techlist; --"}`, 202, "", "", "'; DROP TABLE techlist; --"},
	{"SQL injection in a form", formType, `text=%27%3B+DROP+TABLE+techlist%3B+--`, 202, "", "", "'; DROP TABLE techlist; --"},
	{"script tag", jsonType, `{"text":"<script>alert(1)</script>"}`, 202, "", "", "<script>alert(1)</script>"},
	{"escaped script tag", jsonType, `{"text":"\u003cscript\u003e"}`, 202, "", "", "<script>"},
	{"quotes and backslashes", jsonType, `{"text":"\"quoted\" \\ back"}`, 202, "", "", `"quoted" \ back`},
	{"right-to-left", jsonType, `{"text":"שלום עולם"}`, 202, "", "", "שלום עולם"},
	{"arabic in a form", formType, "text=" + "%D9%85%D8%B1%D8%AD%D8%A8%D8%A7", 202, "", "", "مرحبا"},
	{"emoji", jsonType, `{"text":"Go 🚀 👩‍💻"}`, 202, "", "", "Go 🚀 👩‍💻"},

	// Media types.
	{"text/plain", "text/plain", `{"text":"Go"}`, 415, techlist.EMediaType, noField, ""},
	{"no content type", "", `{"text":"Go"}`, 415, techlist.EMediaType, noField, ""},
	{"application/xml", "application/xml", `<text>Go</text>`, 415, techlist.EMediaType, noField, ""},
	{"multipart", "multipart/form-data; boundary=x", "--x\r\nContent-Disposition: form-data; name=\"text\"\r\n\r\nGo\r\n--x--\r\n", 415, techlist.EMediaType, noField, ""},
	{"malformed content type", ";;;", `{"text":"Go"}`, 415, techlist.EMediaType, noField, ""},
	{"json suffix type", "application/vnd.api+json", `{"text":"Go"}`, 415, techlist.EMediaType, noField, ""},

	// JSON shapes.
	{"unknown field", jsonType, `{"text":"Go","priority":"high"}`, 400, techlist.EInvalid, "priority", ""},
	{"only an unknown field", jsonType, `{"name":"Go"}`, 400, techlist.EInvalid, "name", ""},
	{"field in capitals", jsonType, `{"Text":"Go"}`, 400, techlist.EInvalid, "Text", ""},
	{"duplicated text", jsonType, `{"text":"Go","text":"Rust"}`, 400, techlist.EInvalid, "text", ""},
	{"array body", jsonType, `[{"text":"Go"}]`, 400, techlist.EInvalid, noField, ""},
	{"string body", jsonType, `"Go"`, 400, techlist.EInvalid, noField, ""},
	{"null body", jsonType, `null`, 400, techlist.EInvalid, noField, ""},
	{"true body", jsonType, `true`, 400, techlist.EInvalid, noField, ""},
	{"nested object as text", jsonType, `{"text":{"text":"Go"}}`, 400, techlist.EInvalid, "text", ""},
	{"array as text", jsonType, `{"text":["Go"]}`, 400, techlist.EInvalid, "text", ""},
	{"number as text", jsonType, `{"text":42}`, 400, techlist.EInvalid, "text", ""},
	{"null text", jsonType, `{"text":null}`, 400, techlist.EInvalid, "text", ""},
	{"boolean text", jsonType, `{"text":true}`, 400, techlist.EInvalid, "text", ""},
	{"trailing garbage", jsonType, `{"text":"a"} x`, 400, techlist.EInvalid, noField, ""},
	{"two objects", jsonType, `{"text":"a"}{"text":"b"}`, 400, techlist.EInvalid, noField, ""},
	{"truncated", jsonType, `{"text":"Go"`, 400, techlist.EInvalid, noField, ""},
	{"trailing comma", jsonType, `{"text":"Go",}`, 400, techlist.EInvalid, noField, ""},
	{"missing comma", jsonType, `{"text":"Go" "text":"Rust"}`, 400, techlist.EInvalid, noField, ""},
	{"single quotes", jsonType, `{'text':'Go'}`, 400, techlist.EInvalid, noField, ""},
	{"trailing whitespace is fine", jsonType, "{\"text\":\"Go\"}\n\t ", 202, "", "", "Go"},

	// Forms.
	{"form with two text fields", formType, `text=Go&text=Rust`, 400, techlist.EInvalid, "text", ""},
	{"form with invalid percent-encoding", formType, `text=%zz`, 400, techlist.EInvalid, noField, ""},
	{"form with a truncated escape", formType, `text=Go%2`, 400, techlist.EInvalid, noField, ""},
	{"form with a semicolon", formType, `text=Go;x=1`, 400, techlist.EInvalid, noField, ""},
	{"JSON sent as a form", formType, `{"text":"Go"}`, 400, techlist.EInvalid, "text", ""},
}

// A 404 for an id that is not one repeats at most 64 bytes of it, cut on
// a character: a path can be 64 KiB, and the answer should not grow with it.
func TestNotFoundEchoesABoundedID(t *testing.T) {
	f := newFixture(t)
	for _, id := range []string{strings.Repeat("a", 5000), strings.Repeat("é", 2000)} {
		rec := serve(t, f.handler, http.MethodGet, "/api/v1/techs/"+url.PathEscape(id), "", nil)
		e := checkError(t, rec, http.StatusNotFound, techlist.ENotFound)
		if len(e.Error.Message) > 100 || !strings.HasSuffix(e.Error.Message, `…"`) || !utf8.ValidString(e.Error.Message) {
			t.Errorf("message for a %d-byte id: %d bytes, %q", len(id), len(e.Error.Message), e.Error.Message)
		}
	}
	for _, req := range [][2]string{{http.MethodGet, "/api/v1/techs/a/" + strings.Repeat("b", 20000)}, {strings.Repeat("M", 20000), "/api/v1/techs"}} {
		rec := serve(t, f.handler, req[0], req[1], "", nil)
		if rec.Code != http.StatusNotFound && rec.Code != http.StatusMethodNotAllowed || rec.Body.Len() > 512 {
			t.Errorf("%.10s… %.20s…: got %d with a %d-byte body, want 404 or 405 under 512 bytes", req[0], req[1], rec.Code, rec.Body.Len())
		}
	}
	rec := serve(t, f.handler, http.MethodGet, "/api/v1/techs/abc", "", nil)
	if e := checkError(t, rec, http.StatusNotFound, techlist.ENotFound); e.Error.Message != `no tech with id "abc"` {
		t.Errorf("a short id: got %q, want it whole", e.Error.Message)
	}
}

// A compressed body, or one labelled with a charset other than UTF-8, is
// refused as such (415), not read as text that is not UTF-8; "identity" is
// no coding at all.
func TestCreateRefusesContentEncoding(t *testing.T) {
	f := newFixture(t)
	post := func(path string, encodings ...string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(`{"text":"Go"}`))
		req.Header.Set("Content-Type", jsonType)
		for _, enc := range encodings { // one header line each
			req.Header.Add("Content-Encoding", enc)
		}
		rec := httptest.NewRecorder()
		f.handler.ServeHTTP(rec, req)
		return rec
	}
	for _, encs := range [][]string{{"gzip"}, {"BR"}, {"identity, gzip"}, {"identity", "br"}, {"", "gzip"}} {
		for _, path := range []string{"/api/v1/techs", "/create"} {
			rec := post(path, encs...)
			if e := checkError(t, rec, http.StatusUnsupportedMediaType, techlist.EMediaType); !strings.Contains(e.Error.Message, "Content-Encoding") {
				t.Errorf("%s with Content-Encoding %q: message %q does not name the header", path, encs, e.Error.Message)
			}
		}
	}
	for _, ct := range []string{"application/json; charset=iso-8859-1", "application/x-www-form-urlencoded; charset=latin1"} {
		rec := serve(t, f.handler, http.MethodPost, "/api/v1/techs", ct, strings.NewReader(`{"text":"Go"}`))
		if e := checkError(t, rec, http.StatusUnsupportedMediaType, techlist.EMediaType); !strings.Contains(e.Error.Message, "charset") {
			t.Errorf("%s: message %q does not name the charset", ct, e.Error.Message)
		}
	}
	for _, ct := range []string{"application/json; charset=UTF-8", "application/json; charset=utf8"} {
		if rec := serve(t, f.handler, http.MethodPost, "/api/v1/techs", ct, strings.NewReader(`{"text":"Go"}`)); rec.Code != http.StatusAccepted {
			t.Errorf("%s: got %d, want 202", ct, rec.Code)
		}
	}
	for _, encs := range [][]string{{"identity"}, {"IDENTITY", ""}} {
		if rec := post("/api/v1/techs", encs...); rec.Code != http.StatusAccepted {
			t.Errorf("Content-Encoding %q: got %d, want 202 (body %s)", encs, rec.Code, rec.Body)
		}
	}
	if n := len(f.pub.published()); n != 4 {
		t.Errorf("published: got %d, want 4 (the UTF-8 and identity ones)", n)
	}
}
