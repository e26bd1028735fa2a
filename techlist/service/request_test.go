package service

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/techlist/techlist"
)

func TestRequestIDsCarriesAValidIDElseMakesOne(t *testing.T) {
	var carried string
	h := RequestIDs("client-")(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		carried = techlist.RequestID(r.Context())
	}))
	for _, sent := range []string{"abc-123", "", "a b", strings.Repeat("a", 65)} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		if sent != "" {
			r.Header.Set("X-Request-Id", sent)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if got := w.Header().Get("X-Request-Id"); got != carried {
			t.Errorf("sent %q: answered X-Request-Id %q, want the id carried, %q", sent, got, carried)
		}
		if techlist.ValidRequestID(sent) {
			if carried != sent {
				t.Errorf("sent %q: carried %q, want the caller's", sent, carried)
			}
			continue
		}
		if !techlist.ValidRequestID(carried) || !strings.HasPrefix(carried, "client-") {
			t.Errorf("sent %q: carried %q, want a fresh valid id starting client-", sent, carried)
		}
	}
}

// FuzzRequestID feeds the X-Request-Id header through the middleware: the
// id the request carries on is either the caller's, when it is valid, or
// a fresh one; never anything else.
func FuzzRequestID(f *testing.F) {
	for _, s := range []string{"", "abc-123", "a b", "a\r\nSet-Cookie: x=1", strings.Repeat("a", 65), "<script>", "host/abc-000001"} {
		f.Add(s)
	}
	var got string
	h := RequestIDs("")(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = techlist.RequestID(r.Context())
	}))
	f.Fuzz(func(t *testing.T, id string) {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header["X-Request-Id"] = []string{id}
		h.ServeHTTP(httptest.NewRecorder(), r)
		if !techlist.ValidRequestID(got) {
			t.Fatalf("X-Request-Id %q: the request carries %q", id, got)
		}
		if techlist.ValidRequestID(id) && got != id {
			t.Fatalf("X-Request-Id %q: valid, but the request carries %q", id, got)
		}
		if !techlist.ValidRequestID(id) && got == id {
			t.Fatalf("X-Request-Id %q: invalid, yet carried on", id)
		}
	})
}

func TestLogRequestFields(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&buf, nil))
	r := httptest.NewRequest(http.MethodPost, "/techs?x=1", nil)
	r = r.WithContext(techlist.WithRequestID(r.Context(), "abc-1"))
	LogRequest(logger, slog.LevelInfo, r, Served{Route: "POST /techs", Status: 303, Bytes: 12, Elapsed: 1500 * time.Microsecond})
	var got map[string]any
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatalf("log line %q: %v", buf.String(), err)
	}
	want := map[string]any{
		"msg": "request", "method": "POST", "path": "/techs", "route": "POST /techs",
		"status": 303.0, "bytes": 12.0, "duration_ms": 1.5, "request_id": "abc-1",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: got %v, want %v (line %s)", k, got[k], v, buf.String())
		}
	}
}
