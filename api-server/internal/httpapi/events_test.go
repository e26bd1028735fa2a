package httpapi

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/techlist/techlist"

	"github.com/techlist/api-server/internal/live"
	"github.com/techlist/api-server/internal/stats"
)

// The real relay and stats satisfy the interfaces the server declares.
var (
	_ Events = (*live.Hub)(nil)
	_ Stats  = (*stats.Source)(nil)
)

// pushSource is a live.Source fed by the test.
type pushSource struct{ events chan techlist.Event }

func (p *pushSource) Receive(ctx context.Context) (techlist.Event, error) {
	select {
	case <-ctx.Done():
		return techlist.Event{}, ctx.Err()
	case ev := <-p.events:
		return ev, nil
	}
}

func (p *pushSource) Close() error { return nil }

type fakeStats struct{ snap stats.Snapshot }

func (f fakeStats) Stats(context.Context) stats.Snapshot { return f.snap }

// newLiveServer serves the API with events and stats over fakes, from a
// real http.Server whose WriteTimeout is short, as a stream outlives it.
func newLiveServer(t *testing.T, events Events, st Stats, heartbeat time.Duration) *httptest.Server {
	t.Helper()
	return newLiveServerWith(t, Config{EventsHeartbeat: heartbeat}, events, st)
}

// newLiveServerWith is newLiveServer with more of cfg set.
func newLiveServerWith(t *testing.T, cfg Config, events Events, st Stats) *httptest.Server {
	t.Helper()
	f := newFixture(t)
	reg := prometheus.NewRegistry()
	cfg.CORSOrigins, cfg.MaxBodyBytes = []string{"http://localhost:3000"}, testMaxBody
	h := NewServer(cfg, Deps{
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Reader: f.reader, Publisher: f.pub,
		Pending: f.pending, Idempotency: f.idem, Checks: f.checks, Metrics: NewMetrics(reg), Gatherer: reg,
		NewID:  func() (string, error) { return "01890a5d-ac96-774b-bcce-000000000001", nil },
		Now:    func() time.Time { return testNow },
		Events: events, Stats: st,
	})
	srv := httptest.NewUnstartedServer(h)
	srv.Config.WriteTimeout = 300 * time.Millisecond
	srv.Config.ReadTimeout = 300 * time.Millisecond
	srv.Start()
	t.Cleanup(srv.Close)
	return srv
}

// sseReader reads a stream's lines, with a bound on each read.
type sseReader struct {
	t     *testing.T
	lines chan string
}

func newSSEReader(t *testing.T, body io.Reader) *sseReader {
	r := &sseReader{t: t, lines: make(chan string, 100)}
	go func() {
		defer close(r.lines)
		sc := bufio.NewScanner(body)
		for sc.Scan() {
			r.lines <- sc.Text()
		}
	}()
	return r
}

// until reads lines until one equals want (or starts with it when want
// ends with "*"), returning the lines read before it.
func (r *sseReader) until(want string) []string {
	r.t.Helper()
	var before []string
	timeout := time.After(5 * time.Second)
	for {
		select {
		case line, ok := <-r.lines:
			if !ok {
				r.t.Fatalf("stream ended before %q; read %q", want, before)
			}
			if line == want || strings.HasSuffix(want, "*") && strings.HasPrefix(line, strings.TrimSuffix(want, "*")) {
				return before
			}
			before = append(before, line)
		case <-timeout:
			r.t.Fatalf("no %q within 5s; read %q", want, before)
		}
	}
}

// ended reports whether the stream ends within 5s.
func (r *sseReader) ended() bool {
	timeout := time.After(5 * time.Second)
	for {
		select {
		case _, ok := <-r.lines:
			if !ok {
				return true
			}
		case <-timeout:
			return false
		}
	}
}

func TestEventsStream(t *testing.T) {
	src := &pushSource{events: make(chan techlist.Event)}
	hub := live.NewHub(func(context.Context) (live.Source, error) { return src, nil }, slog.New(slog.NewTextHandler(io.Discard, nil)), live.Options{})
	ctx, stop := context.WithCancel(context.Background())
	wait := live.Start(ctx, hub)
	defer wait()
	defer stop()
	srv := newLiveServer(t, hub, nil, 50*time.Millisecond)

	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/api/v1/events", nil)
	req.Header.Set("Origin", "http://localhost:3000")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status: got %d, want 200", resp.StatusCode)
	}
	for k, want := range map[string]string{
		"Content-Type":                "text/event-stream; charset=utf-8",
		"Cache-Control":               "no-cache, no-transform",
		"X-Accel-Buffering":           "no",
		"Access-Control-Allow-Origin": "http://localhost:3000",
	} {
		if got := resp.Header.Get(k); got != want {
			t.Errorf("%s: got %q, want %q", k, got, want)
		}
	}
	r := newSSEReader(t, resp.Body)
	r.until("retry: 2000")
	r.until(": connected")

	send := func(n int) techlist.Tech {
		tech := techlist.Tech{
			ID:   fmt.Sprintf("01890a5d-ac96-774b-bcce-%012d", n),
			Text: "<script>alert(1)</script>\nline two?", Priority: techlist.PriorityMedium,
			CreatedAt: testNow, SubmittedAt: testNow,
		}
		select {
		case src.events <- techlist.Event{Type: techlist.EventTechCreated, Tech: tech}:
		case <-time.After(5 * time.Second):
			t.Fatal("the hub took no event within 5s")
		}
		return tech
	}
	check := func(tech techlist.Tech) {
		t.Helper()
		r.until("id: " + tech.ID)
		r.until("event: tech.created")
		want := "data: " + mustJSON(t, techlist.Event{Type: techlist.EventTechCreated, Tech: tech})
		select {
		case line := <-r.lines:
			if line != want {
				t.Errorf("data line:\ngot  %s\nwant %s", line, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("no data line within 5s")
		}
	}
	first := send(1)
	check(first)
	// A heartbeat comes while idle, and the stream outlives the server's
	// WriteTimeout (300ms here).
	r.until(": heartbeat")
	time.Sleep(500 * time.Millisecond)
	second := send(2)
	check(second)

	// The server shutting down (the hub stops) ends the stream.
	stop()
	if !r.ended() {
		t.Error("stream still open 5s after the hub stopped")
	}
}

// The data line is the event's JSON on one line, whatever the text holds.
func TestEventsDataIsOneLine(t *testing.T) {
	src := &pushSource{events: make(chan techlist.Event)}
	hub := live.NewHub(func(context.Context) (live.Source, error) { return src, nil }, slog.New(slog.NewTextHandler(io.Discard, nil)), live.Options{})
	ctx, stop := context.WithCancel(context.Background())
	wait := live.Start(ctx, hub)
	defer wait()
	defer stop()
	srv := newLiveServer(t, hub, nil, time.Minute)
	resp, err := srv.Client().Get(srv.URL + "/api/v1/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	r := newSSEReader(t, resp.Body)
	r.until(": connected")
	tech := techlist.Tech{ID: "01890a5d-ac96-774b-bcce-000000000009", Text: "a\u2028b </script> \"q\"", Priority: techlist.PriorityLow, CreatedAt: testNow, SubmittedAt: testNow}
	src.events <- techlist.Event{Type: techlist.EventTechCreated, Tech: tech}
	r.until("event: tech.created")
	var line string
	select {
	case line = <-r.lines:
	case <-time.After(5 * time.Second):
		t.Fatal("no data line")
	}
	data, ok := strings.CutPrefix(line, "data: ")
	if !ok {
		t.Fatalf("got %q, want a data line", line)
	}
	var ev techlist.Event
	if err := json.Unmarshal([]byte(data), &ev); err != nil {
		t.Fatalf("data %q: %v", data, err)
	}
	if ev.Tech.Text != tech.Text || ev.Tech.ID != tech.ID || ev.Type != "tech.created" {
		t.Errorf("got %+v, want %+v", ev, tech)
	}
	if end := <-r.lines; end != "" {
		t.Errorf("after the data line: got %q, want the blank line ending the event", end)
	}
}

// A client going away leaves the hub.
func TestEventsClientLeaves(t *testing.T) {
	hub := live.NewHub(func(ctx context.Context) (live.Source, error) {
		return &pushSource{events: make(chan techlist.Event)}, nil
	}, slog.New(slog.NewTextHandler(io.Discard, nil)), live.Options{})
	ctx, stop := context.WithCancel(context.Background())
	wait := live.Start(ctx, hub)
	defer wait()
	defer stop()
	srv := newLiveServer(t, hub, nil, time.Minute)
	resp, err := srv.Client().Get(srv.URL + "/api/v1/events")
	if err != nil {
		t.Fatal(err)
	}
	newSSEReader(t, resp.Body).until(": connected")
	if n := hub.Clients(); n != 1 {
		t.Errorf("clients while connected: got %d, want 1", n)
	}
	resp.Body.Close()
	deadline := time.Now().Add(5 * time.Second)
	for hub.Clients() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("clients after the client left: got %d, want 0", hub.Clients())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestEventsAndStatsUnavailable(t *testing.T) {
	srv := newLiveServer(t, nil, nil, time.Minute)
	for _, path := range []string{"/api/v1/events", "/api/v1/stats"} {
		resp, err := srv.Client().Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		checkError(t, recorded(t, resp), http.StatusServiceUnavailable, techlist.EUnavailable)
	}
	rec := serve(t, newFixture(t).handler, http.MethodPost, "/api/v1/stats", "", nil)
	checkError(t, rec, http.StatusMethodNotAllowed, techlist.EMethod)
}

func TestStatsRoute(t *testing.T) {
	waiting, total, ratio := int64(2), int64(40), 0.75
	snap := stats.Snapshot{
		QueueMode: "streams", Waiting: &waiting, Total: &total, Live: true,
		Cache:       stats.Cache{Hits: 3, Misses: 1, HitRatio: &ratio},
		GeneratedAt: testNow,
	}
	srv := newLiveServer(t, nil, fakeStats{snap}, time.Minute)
	resp, err := srv.Client().Get(srv.URL + "/api/v1/stats")
	if err != nil {
		t.Fatal(err)
	}
	rec := recorded(t, resp)
	if rec.Code != http.StatusOK {
		t.Fatalf("status: got %d, want 200", rec.Code)
	}
	if got := rec.Header().Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control: got %q, want no-store", got)
	}
	want := `{"queue_mode":"streams","waiting":2,"total":40,"cache":{"hits":3,"misses":1,"bypasses":0,"hit_ratio":0.75},"live":true,"workers":null,"generated_at":"2026-03-04T05:06:07Z"}`
	if got := strings.TrimSpace(rec.Body.String()); got != want {
		t.Errorf("body:\ngot  %s\nwant %s", got, want)
	}
	decodeJSON(t, rec)
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Past EventsMaxClients open streams, one more is refused with a 503 JSON
// error; once a stream ends, its place is free again.
func TestEventsClientsAreCapped(t *testing.T) {
	hub := live.NewHub(func(ctx context.Context) (live.Source, error) {
		return &pushSource{events: make(chan techlist.Event)}, nil
	}, slog.New(slog.NewTextHandler(io.Discard, nil)), live.Options{})
	ctx, stop := context.WithCancel(context.Background())
	wait := live.Start(ctx, hub)
	defer wait()
	defer stop()
	const capacity = 3
	srv := newLiveServerWith(t, Config{EventsHeartbeat: time.Minute, EventsMaxClients: capacity}, hub, nil)
	var open []*http.Response
	defer func() {
		for _, resp := range open {
			resp.Body.Close()
		}
	}()
	for i := range capacity {
		resp, err := srv.Client().Get(srv.URL + "/api/v1/events")
		if err != nil {
			t.Fatal(err)
		}
		open = append(open, resp)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("stream %d of %d: got %d, want 200", i+1, capacity, resp.StatusCode)
		}
		newSSEReader(t, resp.Body).until(": connected")
	}
	resp, err := srv.Client().Get(srv.URL + "/api/v1/events")
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusServiceUnavailable {
		resp.Body.Close()
		t.Fatalf("stream %d past a cap of %d: got %d, want 503", capacity+1, capacity, resp.StatusCode)
	}
	rec := recorded(t, resp)
	checkError(t, rec, http.StatusServiceUnavailable, techlist.EUnavailable)
	if rec.Header().Get("Retry-After") == "" {
		t.Error("503 past the cap: no Retry-After header")
	}

	open[0].Body.Close()
	open = open[1:]
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, err := srv.Client().Get(srv.URL + "/api/v1/events")
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode == http.StatusOK {
			open = append(open, resp)
			break
		}
		resp.Body.Close()
		if time.Now().After(deadline) {
			t.Fatalf("after a stream ended: still %d, want 200", resp.StatusCode)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
