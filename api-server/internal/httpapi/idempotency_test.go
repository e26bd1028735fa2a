package httpapi

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/techlist/techlist/redis"
)

func postWithKey(t *testing.T, f *fixture, key string) (int, string, http.Header) {
	t.Helper()
	rec := serve(t, f.handler, "POST", "/api/v1/techs", "application/json", strings.NewReader(`{"text":"Go"}`), "Idempotency-Key", key)
	var body struct {
		ID string `json:"id"`
	}
	json.Unmarshal(rec.Body.Bytes(), &body)
	return rec.Code, body.ID, rec.Header()
}

func TestIdempotencyKeyReturnsTheSameID(t *testing.T) {
	f := newFixture(t)
	code, first, _ := postWithKey(t, f, "order-42")
	if code != http.StatusAccepted || first == "" {
		t.Fatalf("first POST: got %d %q, want 202 with an id", code, first)
	}
	for range 3 {
		code, again, h := postWithKey(t, f, "order-42")
		if code != http.StatusAccepted || again != first {
			t.Errorf("retry: got %d %q, want 202 %q", code, again, first)
		}
		if h.Get("Idempotent-Replayed") != "true" || h.Get("Location") != "/api/v1/techs/"+first {
			t.Errorf("retry headers: got %v", h)
		}
	}
	if n := len(f.pub.published()); n != 1 {
		t.Errorf("published: got %d envelopes, want 1", n)
	}
	if _, other, _ := postWithKey(t, f, "order-43"); other == first {
		t.Error("another key got the same id")
	}
}

func TestIdempotencyKeyInProgressIsAConflict(t *testing.T) {
	f := newFixture(t)
	f.idem.keys = map[string]string{"busy": ""}
	rec := serve(t, f.handler, "POST", "/api/v1/techs", "application/json", strings.NewReader(`{"text":"Go"}`), "Idempotency-Key", "busy")
	checkError(t, rec, http.StatusConflict, "conflict")
	if n := len(f.pub.published()); n != 0 {
		t.Errorf("published: got %d, want 0", n)
	}
}

// A request that was not accepted releases its key, so the retry is
// processed afresh rather than answered with an id that was never queued.
func TestIdempotencyKeyReleasedWhenNotAccepted(t *testing.T) {
	f := newFixture(t)
	f.pub.err = redis.ErrNoSubscribers
	if code, _, _ := postWithKey(t, f, "k"); code != http.StatusServiceUnavailable {
		t.Fatalf("POST with no worker: got %d, want 503", code)
	}
	f.pub.err = nil
	code, id, h := postWithKey(t, f, "k")
	if code != http.StatusAccepted || id == "" || h.Get("Idempotent-Replayed") != "" {
		t.Errorf("retry after a 503: got %d %q replayed=%q, want a fresh 202", code, id, h.Get("Idempotent-Replayed"))
	}
	if n := len(f.pub.published()); n != 1 {
		t.Errorf("published: got %d, want 1", n)
	}
}

func TestIdempotencyKeyValidation(t *testing.T) {
	for name, key := range map[string]string{
		"too long":     strings.Repeat("k", 256),
		"control char": "a\x01b",
		"non-ASCII":    "clé",
	} {
		f := newFixture(t)
		rec := serve(t, f.handler, "POST", "/api/v1/techs", "application/json", strings.NewReader(`{"text":"Go"}`), "Idempotency-Key", key)
		checkError(t, rec, http.StatusBadRequest, "invalid")
		if !strings.Contains(rec.Body.String(), "Idempotency-Key") {
			t.Errorf("%s: error does not name the header: %s", name, rec.Body)
		}
	}
}

func TestIdempotencyStoreDown(t *testing.T) {
	f := newFixture(t)
	f.idem.err = errors.New("redis: connection refused")
	if code, _, _ := postWithKey(t, f, "k"); code != http.StatusServiceUnavailable {
		t.Errorf("got %d, want 503", code)
	}
	if n := len(f.pub.published()); n != 0 {
		t.Errorf("published: got %d, want 0", n)
	}
}
