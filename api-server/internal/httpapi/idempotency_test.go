package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/techlist/techlist"
	"github.com/techlist/techlist/redis"
	"github.com/techlist/techlist/testenv"
)

func postWithKey(t *testing.T, f *fixture, key string) (int, string, http.Header) {
	t.Helper()
	return postTextWithKey(t, f, key, "Go")
}

func postTextWithKey(t *testing.T, f *fixture, key, text string) (int, string, http.Header) {
	t.Helper()
	rec := serve(t, f.handler, "POST", "/api/v1/techs", "application/json", strings.NewReader(`{"text":"`+text+`"}`), "Idempotency-Key", key)
	var body struct {
		ID string `json:"id"`
	}
	json.Unmarshal(rec.Body.Bytes(), &body)
	return rec.Code, body.ID, rec.Header()
}

// idemStores runs test on a fixture over the fake store and over the real
// Redis one. expire ends a request's lease: at once on the fake, by
// waiting on Redis (whose leases are short here); it returns false once
// the wait is over.
func idemStores(t *testing.T, test func(t *testing.T, f *fixture, expire func(key string) bool)) {
	t.Run("fake", func(t *testing.T) {
		f := newFixture(t)
		test(t, f, func(key string) bool { f.idem.expire(key); return true })
	})
	t.Run("redis", func(t *testing.T) {
		rdb, names := testenv.Redis(t)
		f := newFixture(t)
		f.store = redis.NewIdempotency(rdb, names.Prefix, time.Minute, 500*time.Millisecond)
		f.handler = f.build(t)
		deadline := time.Now().Add(10 * time.Second)
		test(t, f, func(string) bool {
			time.Sleep(100 * time.Millisecond)
			return time.Now().Before(deadline)
		})
	})
}

func idemStore(f *fixture) Idempotency {
	if f.store != nil {
		return f.store
	}
	return f.idem
}

func TestIdempotencyKeyReturnsTheSameID(t *testing.T) {
	idemStores(t, func(t *testing.T, f *fixture, _ func(string) bool) {
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
		// The same text as a form, with other spacing, is the same request.
		rec := serve(t, f.handler, "POST", "/api/v1/techs", "application/x-www-form-urlencoded", strings.NewReader("text=++Go+"), "Idempotency-Key", "order-42")
		if id, _ := decodeJSON(t, rec)["id"].(string); rec.Code != http.StatusAccepted || id != first {
			t.Errorf("the same text as a form: got %d %s, want 202 with %q", rec.Code, rec.Body, first)
		}
		if n := len(f.pub.published()); n != 1 {
			t.Errorf("published: got %d envelopes, want 1", n)
		}
		if _, other, _ := postWithKey(t, f, "order-43"); other == first {
			t.Error("another key got the same id")
		}
	})
}

// The same key with another text is refused with 422, not answered with
// the first text's id (which would drop the second text silently).
func TestIdempotencyKeyWithAnotherBodyIsRefused(t *testing.T) {
	idemStores(t, func(t *testing.T, f *fixture, _ func(string) bool) {
		code, first, _ := postTextWithKey(t, f, "order-42", "Go")
		if code != http.StatusAccepted {
			t.Fatalf("first POST: got %d, want 202", code)
		}
		rec := serve(t, f.handler, "POST", "/api/v1/techs", "application/json", strings.NewReader(`{"text":"Rust"}`), "Idempotency-Key", "order-42")
		e := checkError(t, rec, http.StatusUnprocessableEntity, techlist.EIdempotencyMismatch)
		if !strings.Contains(e.Error.Message, "Idempotency-Key") {
			t.Errorf("message: got %q, want it to name the header", e.Error.Message)
		}
		if rec.Header().Get("Idempotent-Replayed") != "" || rec.Header().Get("Location") != "" {
			t.Errorf("headers of the 422: got %v", rec.Header())
		}
		if envs := f.pub.published(); len(envs) != 1 || envs[0].ID != first || envs[0].Text != "Go" {
			t.Errorf("published: got %+v, want only the first text", envs)
		}
	})
}

func TestIdempotencyKeyInProgressIsAConflict(t *testing.T) {
	idemStores(t, func(t *testing.T, f *fixture, _ func(string) bool) {
		if _, err := idemStore(f).Reserve(context.Background(), "busy", fingerprint("Go"), "01890a5d-ac96-774b-bcce-0000000000ff"); err != nil {
			t.Fatal(err)
		}
		rec := serve(t, f.handler, "POST", "/api/v1/techs", "application/json", strings.NewReader(`{"text":"Go"}`), "Idempotency-Key", "busy")
		checkError(t, rec, http.StatusConflict, techlist.EConflict)
		if n := len(f.pub.published()); n != 0 {
			t.Errorf("published: got %d, want 0", n)
		}
	})
}

// A request that crashed between reserving its key and settling it locks
// the key only for its short lease; then a retry publishes the same id.
func TestIdempotencyKeyAfterACrash(t *testing.T) {
	idemStores(t, func(t *testing.T, f *fixture, expire func(string) bool) {
		const crashedID = "01890a5d-ac96-774b-bcce-0000000000ff"
		if _, err := idemStore(f).Reserve(context.Background(), "k", fingerprint("Go"), crashedID); err != nil {
			t.Fatal(err)
		}
		code, id, h := postWithKey(t, f, "k")
		for code == http.StatusConflict && expire("k") {
			code, id, h = postWithKey(t, f, "k")
		}
		if code != http.StatusAccepted || id != crashedID || h.Get("Idempotent-Replayed") != "" {
			t.Fatalf("retry after the crashed request's lease: got %d %q replayed=%q, want 202 %q, published afresh", code, id, h.Get("Idempotent-Replayed"), crashedID)
		}
		if envs := f.pub.published(); len(envs) != 1 || envs[0].ID != crashedID {
			t.Errorf("published: got %+v, want the crashed request's id once", envs)
		}
		if code, again, h := postWithKey(t, f, "k"); code != http.StatusAccepted || again != crashedID || h.Get("Idempotent-Replayed") != "true" {
			t.Errorf("then: got %d %q replayed=%q, want a replay of %q", code, again, h.Get("Idempotent-Replayed"), crashedID)
		}
	})
}

// When Redis does not confirm a publish, it is unknown whether the tech was
// queued: the key keeps its id, so the retry the key exists for publishes
// the same id again instead of queueing a second tech.
func TestIdempotencyKeyUnknownOutcomeKeepsTheID(t *testing.T) {
	idemStores(t, func(t *testing.T, f *fixture, _ func(string) bool) {
		f.pub.err = errors.New("read tcp 127.0.0.1:6379: i/o timeout")
		rec := serve(t, f.handler, "POST", "/api/v1/techs", "application/json", strings.NewReader(`{"text":"Go"}`), "Idempotency-Key", "k")
		e := checkError(t, rec, http.StatusServiceUnavailable, techlist.EOutcomeUnknown)
		if !strings.Contains(e.Error.Message, "same Idempotency-Key is safe") {
			t.Errorf("message: got %q, want it to say a retry with the key is safe", e.Error.Message)
		}
		if f.pub.attempts == 0 {
			t.Fatal("Publish was not called")
		}

		// Still refused, now clearly (no worker): the earlier attempt may
		// have been queued, so the key keeps its id.
		f.pub.err = techlist.ErrNoSubscribers
		rec = serve(t, f.handler, "POST", "/api/v1/techs", "application/json", strings.NewReader(`{"text":"Go"}`), "Idempotency-Key", "k")
		checkError(t, rec, http.StatusServiceUnavailable, techlist.EOutcomeUnknown)

		f.pub.err = nil
		code, id, h := postWithKey(t, f, "k")
		if code != http.StatusAccepted || h.Get("Idempotent-Replayed") != "" {
			t.Fatalf("retry: got %d replayed=%q, want 202 published afresh", code, h.Get("Idempotent-Replayed"))
		}
		if id != "01890a5d-ac96-774b-bcce-000000000001" {
			t.Errorf("retry: got id %q, want the first request's id", id)
		}
		if envs := f.pub.published(); len(envs) != 1 || envs[0].ID != id {
			t.Errorf("published: got %+v, want %q once", envs, id)
		}
	})
}

// A request that was clearly not accepted releases its key, so the retry is
// processed afresh rather than answered with an id that was never queued.
func TestIdempotencyKeyReleasedWhenNotAccepted(t *testing.T) {
	idemStores(t, func(t *testing.T, f *fixture, _ func(string) bool) {
		f.pub.err = techlist.ErrNoSubscribers
		if code, _, _ := postWithKey(t, f, "k"); code != http.StatusServiceUnavailable {
			t.Fatalf("POST with no worker: got %d, want 503", code)
		}
		f.pub.err = nil
		// Released: even another text may use the key now.
		code, id, h := postTextWithKey(t, f, "k", "Rust")
		if code != http.StatusAccepted || id == "" || h.Get("Idempotent-Replayed") != "" {
			t.Errorf("retry after a 503: got %d %q replayed=%q, want a fresh 202", code, id, h.Get("Idempotent-Replayed"))
		}
		if envs := f.pub.published(); len(envs) != 1 || envs[0].ID != id {
			t.Errorf("published: got %+v, want %q once", envs, id)
		}
	})
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

// An invalid body is refused before the key is looked at, so the key stays
// free for the corrected request.
func TestIdempotencyKeyNotTakenByAnInvalidBody(t *testing.T) {
	idemStores(t, func(t *testing.T, f *fixture, _ func(string) bool) {
		rec := serve(t, f.handler, "POST", "/api/v1/techs", "application/json", strings.NewReader(`{"text":""}`), "Idempotency-Key", "k")
		checkError(t, rec, http.StatusBadRequest, techlist.EInvalid)
		if code, _, h := postWithKey(t, f, "k"); code != http.StatusAccepted || h.Get("Idempotent-Replayed") != "" {
			t.Errorf("the corrected request: got %d replayed=%q, want a fresh 202", code, h.Get("Idempotent-Replayed"))
		}
	})
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
