package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/techlist/techlist"
	"github.com/techlist/techlist/redis"
	"github.com/techlist/techlist/testenv"
)

// postKeyed POSTs text as JSON with an Idempotency-Key.
func postKeyed(t *testing.T, base, key, text string) (answer, string) {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"text": text})
	req, err := http.NewRequest("POST", base+"/api/v1/techs", strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", key)
	c := http.Client{Timeout: 10 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("POST with key %q: %v", key, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var v struct {
		ID    string `json:"id"`
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	json.Unmarshal(b, &v)
	if v.ID == "" {
		return answer{resp.StatusCode, resp.Header, b}, v.Error.Code
	}
	return answer{resp.StatusCode, resp.Header, b}, v.ID
}

// idemRecord is the Redis key of an Idempotency-Key's record.
func idemRecord(prefix, key string) string {
	sum := sha256.Sum256([]byte(key))
	return prefix + ":idem:" + hex.EncodeToString(sum[:])
}

// TestRunIdempotencyKey drives the Idempotency-Key through the whole
// api-server on the real Redis: bound to its request, and never locked for
// long by a request that crashed.
func TestRunIdempotencyKey(t *testing.T) {
	rdb, names := testenv.Redis(t)
	env := testEnv(t, names)
	env["PUBLISH_RETRY"] = "200ms"
	env["IDEMPOTENCY_LEASE"] = "1s"
	base := "http://127.0.0.1:" + env["PORT"]
	logs := &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- run(ctx, nil, mapenv(env), logs, io.Discard) }()
	defer func() {
		cancel()
		<-errc
		if t.Failed() {
			t.Logf("server logs:\n%s", logs.String())
		}
	}()
	testenv.WaitStatus(t, base+"/healthz", http.StatusOK, 30*time.Second, errc)
	sub, err := redis.NewChannelConsumer(ctx, rdb, redis.ChannelConfig{Channel: names.Channel, Worker: "test", Buffer: 1000}) // a worker, so POSTs are accepted
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()

	a, first := postKeyed(t, base, "order-1", "Go")
	if a.status != http.StatusAccepted || !techlist.ValidID(first) {
		t.Fatalf("first POST: got %d %s, want 202 with an id", a.status, a.body)
	}
	if a, id := postKeyed(t, base, "order-1", "Go"); a.status != http.StatusAccepted || id != first || a.header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("the same POST again: got %d %s replayed=%q, want 202 %s replayed", a.status, a.body, a.header.Get("Idempotent-Replayed"), first)
	}
	if a, code := postKeyed(t, base, "order-1", "Rust"); a.status != http.StatusUnprocessableEntity || code != techlist.EIdempotencyMismatch {
		t.Errorf("the key with another text: got %d %s, want 422 %s", a.status, a.body, techlist.EIdempotencyMismatch)
	}

	// An api-server of the previous version crashed while holding a key: its
	// record says "in flight" with no lease. The retry publishes its id.
	const legacyID = "01890a5d-ac96-774b-bcce-00000000aaaa"
	rdb.Set(ctx, idemRecord(names.Prefix, "order-2"), "pending:"+legacyID, 24*time.Hour)
	if a, id := postKeyed(t, base, "order-2", "Go"); a.status != http.StatusAccepted || id != legacyID {
		t.Errorf("retry of an old crashed request: got %d %s, want 202 %s", a.status, a.body, legacyID)
	}

	// An api-server crashed between reserving a key and settling it. Its
	// lease (IDEMPOTENCY_LEASE) ends within a second; until then 409.
	const crashedID = "01890a5d-ac96-774b-bcce-00000000bbbb"
	crashed := redis.NewIdempotency(rdb, names.Prefix, 24*time.Hour, time.Second)
	if _, err := crashed.Reserve(ctx, "order-3", fingerprintOf("Go"), crashedID); err != nil {
		t.Fatal(err)
	}
	a, id := postKeyed(t, base, "order-3", "Go")
	if a.status != http.StatusConflict || id != techlist.EConflict {
		t.Errorf("while the crashed request's lease lasts: got %d %s, want 409 conflict", a.status, a.body)
	}
	for deadline := time.Now().Add(10 * time.Second); a.status == http.StatusConflict && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
		a, id = postKeyed(t, base, "order-3", "Go")
	}
	if a.status != http.StatusAccepted || id != crashedID {
		t.Errorf("retry after the crashed request's lease: got %d %s, want 202 %s", a.status, a.body, crashedID)
	}

	// What reached the queue: each id once, per POST that published.
	want := []string{first, legacyID, crashedID}
	for _, w := range want {
		rctx, rcancel := context.WithTimeout(ctx, 5*time.Second)
		d, err := sub.Receive(rctx)
		rcancel()
		if err != nil {
			t.Fatalf("receive: %v (want ids %v)", err, want)
		}
		env, err := techlist.DecodeEnvelope(d.Payload)
		if err != nil || env.ID != w {
			t.Errorf("envelope: got %s (%v), want id %s", d.Payload, err, w)
		}
	}
}

// fingerprintOf is the api-server's fingerprint of a request with text
// (httpapi's: the sha256 of the validated text).
func fingerprintOf(text string) string {
	sum := sha256.Sum256([]byte(text))
	return hex.EncodeToString(sum[:])
}
