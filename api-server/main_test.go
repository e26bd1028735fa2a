package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/techlist/techlist"
	"github.com/techlist/techlist/redis"
	"github.com/techlist/techlist/testenv"
)

// syncBuffer holds a service's log while the test reads it.
type syncBuffer = testenv.Buffer

// mapenv returns a getenv reading from m.
func mapenv(m map[string]string) func(string) string {
	return func(name string) string { return m[name] }
}

// testEnv is the environment of an api-server on the test's own port,
// database, cache prefix and channel.
func testEnv(t *testing.T, rdbNames testenv.Names) map[string]string {
	t.Helper()
	mysqlCfg := testenv.MySQLConfig(t)
	return map[string]string{
		"PORT":             strconv.Itoa(testenv.FreePort(t)),
		"MYSQL_HOST":       mysqlCfg.Host,
		"MYSQL_PORT":       strconv.Itoa(mysqlCfg.Port),
		"MYSQL_USERNAME":   mysqlCfg.User,
		"MYSQL_PASSWORD":   mysqlCfg.Password,
		"MYSQL_DATABASE":   mysqlCfg.Database,
		"REDIS_ADDRS":      testenv.RedisAddr(),
		"REDIS_CHANNEL":    rdbNames.Channel,
		"REDIS_CACHE":      rdbNames.Prefix,
		"LOG_FORMAT":       "json",
		"LOG_LEVEL":        "debug",
		"STARTUP_TIMEOUT":  "20s",
		"SHUTDOWN_TIMEOUT": "5s",
	}
}

type answer struct {
	status int
	header http.Header
	body   []byte
}

func request(t *testing.T, method, url, contentType, body string) answer {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	c := http.Client{Timeout: 10 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, url, err)
	}
	return answer{resp.StatusCode, resp.Header, b}
}

// TestRun starts the whole api-server on the real Redis and MySQL and
// drives it over HTTP.
func TestRun(t *testing.T) {
	rdb, names := testenv.Redis(t) // the test's own client, for subscribing
	env := testEnv(t, names)
	base := "http://127.0.0.1:" + env["PORT"]
	logs := &syncBuffer{}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- run(ctx, nil, mapenv(env), logs, io.Discard) }()
	defer func() {
		if t.Failed() {
			t.Logf("server logs:\n%s", logs.String())
		}
	}()
	stopped := false
	defer func() { // stop the server even when a check below fails
		if !stopped {
			cancel()
			select {
			case <-errc:
			case <-time.After(15 * time.Second):
			}
		}
	}()

	testenv.WaitStatus(t, base+"/healthz", http.StatusOK, 30*time.Second, errc)

	if a := request(t, "GET", base+"/readyz", "", ""); a.status != http.StatusOK {
		t.Errorf("GET /readyz: got %d %s, want 200", a.status, a.body)
	}
	if err := run(ctx, []string{"-healthcheck"}, mapenv(env), io.Discard, io.Discard); err != nil {
		t.Errorf("-healthcheck against the running server: got %v, want nil", err)
	}

	// Reads: a miss fills the cache, the next read is a hit.
	for _, want := range []string{"MISS", "HIT"} {
		a := request(t, "GET", base+"/api/v1/techs", "", "")
		if a.status != http.StatusOK || a.header.Get("X-Cache") != want {
			t.Errorf("GET /api/v1/techs: got %d X-Cache %q, want 200 %s (body %s)", a.status, a.header.Get("X-Cache"), want, a.body)
		}
		wantBody := fmt.Sprintf(`{"data":[],"next_cursor":null,"cached":%v}`, want == "HIT")
		if string(a.body) != wantBody {
			t.Errorf("GET /api/v1/techs: got %s, want %s", a.body, wantBody)
		}
	}
	if a := request(t, "GET", base+"/", "", ""); a.status != http.StatusOK || string(a.body) != "OK!" {
		t.Errorf("GET /: got %d %q, want 200 OK!", a.status, a.body)
	}

	// A write nobody is subscribed to is refused.
	a := request(t, "POST", base+"/api/v1/techs", "application/json", `{"text":"Go"}`)
	if a.status != http.StatusServiceUnavailable || !strings.Contains(string(a.body), `"code":"unavailable"`) {
		t.Errorf("POST without a subscriber: got %d %s, want 503 unavailable", a.status, a.body)
	}

	// With a subscriber, the envelope arrives on the channel.
	subCtx, subCancel := context.WithTimeout(ctx, 10*time.Second)
	defer subCancel()
	sub, err := redis.NewChannelConsumer(subCtx, rdb, redis.ChannelConfig{Channel: env["REDIS_CHANNEL"], Worker: "test", Buffer: 1000})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	a = request(t, "POST", base+"/api/v1/techs", "application/json", `{"text":"  Go 🚀 "}`)
	if a.status != http.StatusAccepted {
		t.Fatalf("POST with a subscriber: got %d %s, want 202", a.status, a.body)
	}
	var accepted struct {
		ID     string `json:"id"`
		Status string `json:"status"`
	}
	if err := json.Unmarshal(a.body, &accepted); err != nil || !techlist.ValidID(accepted.ID) || accepted.Status != "queued" {
		t.Fatalf("POST body: got %s (%v), want {id, status: queued}", a.body, err)
	}
	if got, want := a.header.Get("Location"), "/api/v1/techs/"+accepted.ID; got != want {
		t.Errorf("Location: got %q, want %q", got, want)
	}
	d, err := sub.Receive(subCtx)
	if err != nil {
		t.Fatalf("receive the envelope: %v", err)
	}
	envelope, err := techlist.DecodeEnvelope(d.Payload)
	if err != nil {
		t.Fatalf("envelope %s: %v", d.Payload, err)
	}
	if envelope.ID != accepted.ID || envelope.Text != "Go 🚀" {
		t.Errorf("envelope: got id %q text %q, want id %q text %q", envelope.ID, envelope.Text, accepted.ID, "Go 🚀")
	}

	// Until the worker stores it, the tech is pending.
	a = request(t, "GET", base+"/api/v1/techs/"+accepted.ID, "", "")
	wantPending := `{"id":"` + accepted.ID + `","status":"pending"}`
	if a.status != http.StatusAccepted || string(a.body) != wantPending {
		t.Errorf("GET the accepted tech: got %d %s, want 202 %s", a.status, a.body, wantPending)
	}
	if a := request(t, "GET", base+"/api/v1/techs/01890a5d-ac96-774b-bcce-b302099a8057", "", ""); a.status != http.StatusNotFound {
		t.Errorf("GET an unknown tech: got %d %s, want 404", a.status, a.body)
	}

	if a := request(t, "GET", base+"/metrics", "", ""); a.status != http.StatusOK || !bytes.Contains(a.body, []byte("api_http_requests_total")) {
		t.Errorf("GET /metrics: got %d, want 200 with api_http_requests_total", a.status)
	}

	// Shutdown: cancelling the context makes run return nil.
	cancel()
	stopped = true
	select {
	case err := <-errc:
		if err != nil {
			t.Errorf("run after cancel: got %v, want nil", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("run did not return after its context was cancelled")
	}
	if !strings.Contains(logs.String(), `"msg":"listening"`) {
		t.Errorf("logs: want a JSON \"listening\" line, got\n%s", logs.String())
	}
}

// A bad value stops run before it connects or listens, with an error
// naming the variable.
func TestRunRefusesBadConfig(t *testing.T) {
	tests := []struct {
		name, value string
	}{
		{"PORT", "abc"},
		{"PORT", "70000"},
		{"MYSQL_TABLE", "x; drop"},
		{"MYSQL_DATABASE", "db`; DROP DATABASE mysql; --"},
		{"MYSQL_PORT", "3306x"},
		{"QUEUE_MODE", "kafka"},
		{"STREAM_PARTITIONS", "0"},
		{"STREAM_PARTITIONS", "65"},
		{"STREAM_PARTITIONS", "three"},
		{"CACHE_TTL", "-1s"},
		{"CACHE_TTL", "0"},
		{"CACHE_TTL", "soon"},
		{"CACHE_TTL_JITTER", "1"},
		{"CACHE_TTL_JITTER", "-0.1"},
		{"CACHE_REFRESH_AFTER", "1m"}, // not shorter than CACHE_TTL
		{"CACHE_REFRESH_AFTER", "soon"},
		{"PENDING_TTL", "forever"},
		{"PENDING_TTL", "0"},
		{"MAX_BODY_BYTES", "1"},
		{"IDEMPOTENCY_LEASE", "0"},
		{"IDEMPOTENCY_LEASE", "5s"}, // not longer than PUBLISH_RETRY
		{"REDIS_ADDRS", "no-port"},
		{"ADMIN_ADDR", "6060"},
		{"LOG_LEVEL", "loud"},
		{"LOG_FORMAT", "xml"},
	}
	for _, tt := range tests {
		t.Run(tt.name+"="+tt.value, func(t *testing.T) {
			// Nothing answers on these, so a run that went on to connect
			// would fail differently, not hang.
			env := map[string]string{
				"PORT":            strconv.Itoa(testenv.FreePort(t)),
				"MYSQL_PORT":      strconv.Itoa(testenv.FreePort(t)),
				"REDIS_ADDRS":     "127.0.0.1:" + strconv.Itoa(testenv.FreePort(t)),
				"STARTUP_TIMEOUT": "1s",
				"LOG_FORMAT":      "json",
			}
			env[tt.name] = tt.value
			var logs bytes.Buffer
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			err := run(ctx, nil, mapenv(env), &logs, io.Discard)
			if err == nil {
				t.Fatal("got nil error, want one")
			}
			if !strings.Contains(err.Error(), tt.name) {
				t.Errorf("error %q does not name %s", err, tt.name)
			}
			if strings.Contains(logs.String(), "starting") || strings.Contains(logs.String(), "listening") ||
				strings.Contains(logs.String(), "retrying") {
				t.Errorf("run started before refusing the configuration; logs:\n%s", logs.String())
			}
		})
	}
}

func TestRunRefusesUnknownFlags(t *testing.T) {
	var stderr bytes.Buffer
	err := run(context.Background(), []string{"-nope"}, mapenv(nil), io.Discard, &stderr)
	if err == nil {
		t.Fatal("got nil error, want one")
	}
	if !strings.Contains(stderr.String(), "healthcheck") {
		t.Errorf("usage on stderr: got %q, want the flags listed", stderr.String())
	}
}

func TestHealthcheckFailsWhenNothingListens(t *testing.T) {
	env := map[string]string{"PORT": strconv.Itoa(testenv.FreePort(t))}
	if err := run(context.Background(), []string{"-healthcheck"}, mapenv(env), io.Discard, io.Discard); err == nil {
		t.Error("-healthcheck with nothing listening: got nil error, want one")
	}
}
