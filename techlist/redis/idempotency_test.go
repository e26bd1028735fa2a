package redis_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/techlist/techlist"
	"github.com/techlist/techlist/redis"
	"github.com/techlist/techlist/testenv"
)

func sha(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// newIdempotency returns a store on the test's own prefix, with lease.
func newIdempotency(t *testing.T, lease time.Duration) (*redis.Idempotency, func(key string) string) {
	t.Helper()
	rdb, names := testenv.Redis(t)
	recordKey := func(key string) string { return names.Prefix + ":idem:" + sha(key) }
	return redis.NewIdempotency(rdb, names.Prefix, time.Minute, lease), recordKey
}

func reserve(t *testing.T, idem *redis.Idempotency, key, fp, id string) techlist.KeyReservation {
	t.Helper()
	res, err := idem.Reserve(context.Background(), key, fp, id)
	if err != nil {
		t.Fatalf("Reserve(%q, %q, %q): %v", key, fp, id, err)
	}
	return res
}

func checkReservation(t *testing.T, what string, res techlist.KeyReservation, outcome techlist.KeyOutcome, id string) {
	t.Helper()
	if res.Outcome != outcome || res.ID != id {
		t.Fatalf("%s: got outcome %d id %q, want outcome %d id %q", what, res.Outcome, res.ID, outcome, id)
	}
}

func TestIdempotencySameRequestReplays(t *testing.T) {
	t.Parallel()
	idem, _ := newIdempotency(t, time.Minute)
	ctx := context.Background()
	res := reserve(t, idem, "key-1", "fp-a", "id-a")
	checkReservation(t, "first Reserve", res, techlist.KeyReserved, "id-a")
	if err := idem.Confirm(ctx, res); err != nil {
		t.Fatal(err)
	}
	checkReservation(t, "Reserve after Confirm", reserve(t, idem, "key-1", "fp-a", "id-b"), techlist.KeyReplay, "id-a")
	checkReservation(t, "another key", reserve(t, idem, "key-2", "fp-a", "id-c"), techlist.KeyReserved, "id-c")
}

func TestIdempotencyRecordExpires(t *testing.T) {
	t.Parallel()
	rdb, names := testenv.Redis(t)
	idem := redis.NewIdempotency(rdb, names.Prefix, time.Minute, time.Second)
	res := reserve(t, idem, "key-1", "fp-a", "id-a")
	ctx := context.Background()
	if err := idem.Confirm(ctx, res); err != nil {
		t.Fatal(err)
	}
	if ttl := rdb.PTTL(ctx, names.Prefix+":idem:"+sha("key-1")).Val(); ttl <= 0 || ttl > time.Minute {
		t.Errorf("TTL: got %v, want within (0, 1m]", ttl)
	}
}

// The same key with another request is refused, in flight or answered.
func TestIdempotencyOtherFingerprintIsAMismatch(t *testing.T) {
	t.Parallel()
	idem, _ := newIdempotency(t, time.Minute)
	res := reserve(t, idem, "key-1", "fp-a", "id-a")
	checkReservation(t, "in flight", reserve(t, idem, "key-1", "fp-b", "id-b"), techlist.KeyMismatch, "")
	if err := idem.Confirm(context.Background(), res); err != nil {
		t.Fatal(err)
	}
	checkReservation(t, "answered", reserve(t, idem, "key-1", "fp-b", "id-c"), techlist.KeyMismatch, "")
	checkReservation(t, "the first request again", reserve(t, idem, "key-1", "fp-a", "id-d"), techlist.KeyReplay, "id-a")
}

// Of requests racing with one key, one holds it and the others are told
// it is busy.
func TestIdempotencyConcurrentRequestsAreBusy(t *testing.T) {
	t.Parallel()
	idem, _ := newIdempotency(t, time.Minute)
	const n = 20
	got := make([]techlist.KeyReservation, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { got[i] = reserve(t, idem, "key-1", "fp-a", fmt.Sprint("id-", i)) })
	}
	wg.Wait()
	counts := map[techlist.KeyOutcome]int{}
	var holder string
	for _, res := range got {
		counts[res.Outcome]++
		if res.Outcome == techlist.KeyReserved {
			holder = res.ID
		}
	}
	if counts[techlist.KeyReserved] != 1 || counts[techlist.KeyBusy] != n-1 {
		t.Fatalf("outcomes: got %v, want 1 reserved and %d busy", counts, n-1)
	}
	for _, res := range got {
		if res.ID != holder {
			t.Errorf("busy answer names id %q, want the holder's %q", res.ID, holder)
		}
	}
}

// A request that crashed holds its key only for its lease; then a retry
// publishes the same id again.
func TestIdempotencyExpiredLeaseIsRetakenWithTheSameID(t *testing.T) {
	t.Parallel()
	idem, _ := newIdempotency(t, 300*time.Millisecond)
	crashed := reserve(t, idem, "key-1", "fp-a", "id-a")
	checkReservation(t, "first Reserve", crashed, techlist.KeyReserved, "id-a")
	retry := pollReserve(t, idem, "key-1", "fp-a", techlist.KeyRetaken)
	checkReservation(t, "retry after the lease", retry, techlist.KeyRetaken, "id-a")
	// The retry holds a fresh lease.
	checkReservation(t, "while the retry is in flight", reserve(t, idem, "key-1", "fp-a", "id-c"), techlist.KeyBusy, "id-a")
	// The crashed request, back after all, cannot release what is no
	// longer its reservation.
	if err := idem.Release(context.Background(), crashed); err != nil {
		t.Fatal(err)
	}
	checkReservation(t, "after the stale Release", reserve(t, idem, "key-1", "fp-a", "id-d"), techlist.KeyBusy, "id-a")
}

// pollReserve reserves until the outcome is want, for at most 10 s.
func pollReserve(t *testing.T, idem *redis.Idempotency, key, fp string, want techlist.KeyOutcome) techlist.KeyReservation {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for i := 0; ; i++ {
		res := reserve(t, idem, key, fp, fmt.Sprint("id-poll-", i))
		if res.Outcome == want || time.Now().After(deadline) {
			return res
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// An unknown outcome keeps the key and its id; the next request publishes
// that id again at once, without waiting for a lease.
func TestIdempotencyUnknownKeepsTheID(t *testing.T) {
	t.Parallel()
	idem, _ := newIdempotency(t, time.Minute)
	ctx := context.Background()
	res := reserve(t, idem, "key-1", "fp-a", "id-a")
	if err := idem.Unknown(ctx, res); err != nil {
		t.Fatal(err)
	}
	retry := reserve(t, idem, "key-1", "fp-a", "id-b")
	checkReservation(t, "retry after an unknown outcome", retry, techlist.KeyRetaken, "id-a")
	checkReservation(t, "other text after an unknown outcome", reserve(t, idem, "key-1", "fp-b", "id-c"), techlist.KeyMismatch, "")
	if err := idem.Confirm(ctx, retry); err != nil {
		t.Fatal(err)
	}
	// A late Unknown from the first request does not undo the answer.
	if err := idem.Unknown(ctx, res); err != nil {
		t.Fatal(err)
	}
	checkReservation(t, "after a late Unknown", reserve(t, idem, "key-1", "fp-a", "id-d"), techlist.KeyReplay, "id-a")
}

func TestIdempotencyReleaseDeletesOnlyItsOwnReservation(t *testing.T) {
	t.Parallel()
	idem, _ := newIdempotency(t, time.Minute)
	ctx := context.Background()
	res := reserve(t, idem, "key-1", "fp-a", "id-a")
	if err := idem.Release(ctx, res); err != nil {
		t.Fatal(err)
	}
	// Released: the key is new again, with a new id and even a new text.
	fresh := reserve(t, idem, "key-1", "fp-b", "id-b")
	checkReservation(t, "after Release", fresh, techlist.KeyReserved, "id-b")

	// Another request's Release (same key, other token) deletes nothing.
	if err := idem.Release(ctx, res); err != nil {
		t.Fatal(err)
	}
	checkReservation(t, "after another's Release", reserve(t, idem, "key-1", "fp-b", "id-c"), techlist.KeyBusy, "id-b")
	// Nor does a Release after the key answered.
	if err := idem.Confirm(ctx, fresh); err != nil {
		t.Fatal(err)
	}
	if err := idem.Release(ctx, fresh); err != nil {
		t.Fatal(err)
	}
	checkReservation(t, "after a Release of an answered key", reserve(t, idem, "key-1", "fp-b", "id-d"), techlist.KeyReplay, "id-b")
}

// Records of the previous version (a plain string) keep their meaning.
func TestIdempotencyReadsTheOldRecords(t *testing.T) {
	t.Parallel()
	rdb, names := testenv.Redis(t)
	idem := redis.NewIdempotency(rdb, names.Prefix, time.Minute, time.Minute)
	ctx := context.Background()
	rdb.Set(ctx, names.Prefix+":idem:"+sha("answered"), "id-a", time.Minute)
	rdb.Set(ctx, names.Prefix+":idem:"+sha("in-flight"), "pending:id-b", time.Minute)
	checkReservation(t, "answered", reserve(t, idem, "answered", "fp-a", "id-c"), techlist.KeyReplay, "id-a")
	checkReservation(t, "in flight, outcome unknown", reserve(t, idem, "in-flight", "fp-a", "id-d"), techlist.KeyRetaken, "id-b")
	checkReservation(t, "in flight, then other text", reserve(t, idem, "in-flight", "fp-b", "id-e"), techlist.KeyMismatch, "")
}

// The Redis client resends a script whose connection broke before the
// answer came back, so one request may reserve twice. The second run finds
// the request's own lease: the answer is the first run's, not busy (which
// the api-server answers 409, to the request that holds the key).
func TestIdempotencyRerunOfOneRequestFindsItsOwnLease(t *testing.T) {
	t.Parallel()
	idem, _ := newIdempotency(t, 300*time.Millisecond)
	ctx := context.Background()
	rerun := func(what, id, token string, outcome techlist.KeyOutcome, wantID string) {
		t.Helper()
		for run := range 2 {
			res, err := redis.ReserveWithToken(ctx, idem, "key-1", "fp-a", id, token)
			if err != nil {
				t.Fatal(err)
			}
			checkReservation(t, fmt.Sprintf("%s, run %d", what, run+1), res, outcome, wantID)
		}
	}
	rerun("new key", "id-a", "token-1", techlist.KeyReserved, "id-a")
	checkReservation(t, "another request meanwhile", reserve(t, idem, "key-1", "fp-a", "id-b"), techlist.KeyBusy, "id-a")
	// The lease ends; another request retakes the key and does not learn
	// whether its publish went through.
	if err := idem.Unknown(ctx, pollReserve(t, idem, "key-1", "fp-a", techlist.KeyRetaken)); err != nil {
		t.Fatal(err)
	}
	rerun("retaken after an unknown outcome", "id-d", "token-2", techlist.KeyRetaken, "id-a")
}

// The same, on a real broken connection: a proxy between the client and
// Redis drops the connection instead of passing the first reservation's
// answer on, the client resends the script, and the request still holds
// its key.
func TestIdempotencyReserveSurvivesABrokenConnection(t *testing.T) {
	t.Parallel()
	_, names := testenv.Redis(t)
	proxy := newDroppingProxy(t, testenv.RedisAddr(), []byte("reserved"))
	rdb := redis.NewClient(redis.Config{Addrs: []string{proxy}})
	t.Cleanup(func() { rdb.Close() })
	idem := redis.NewIdempotency(rdb, names.Prefix, time.Minute, time.Minute)
	res := reserve(t, idem, "key-1", "fp-a", "id-a")
	checkReservation(t, "Reserve whose first answer was lost", res, techlist.KeyReserved, "id-a")
	if err := idem.Confirm(context.Background(), res); err != nil {
		t.Fatal(err)
	}
	checkReservation(t, "the retry of the request", reserve(t, idem, "key-1", "fp-a", "id-b"), techlist.KeyReplay, "id-a")
}

// newDroppingProxy listens on a free port of 127.0.0.1 and relays to
// upstream, except the first answer that holds drop: it closes that
// connection instead of passing the answer on.
func newDroppingProxy(t *testing.T, upstream string, drop []byte) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var dropped atomic.Bool
	go func() {
		for {
			client, err := ln.Accept()
			if err != nil {
				return
			}
			server, err := net.Dial("tcp", upstream)
			if err != nil {
				client.Close()
				continue
			}
			go func() { io.Copy(server, client); server.Close() }()
			go func() {
				defer client.Close()
				buf := make([]byte, 64<<10)
				for {
					n, err := server.Read(buf)
					if n > 0 && bytes.Contains(buf[:n], drop) && dropped.CompareAndSwap(false, true) {
						server.Close()
						return
					}
					if n > 0 {
						if _, werr := client.Write(buf[:n]); werr != nil {
							return
						}
					}
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}
