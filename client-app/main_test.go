package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/techlist/techlist"
	"github.com/techlist/techlist/testenv"
)

// fakeAPIServer plays the api-server: it records every POST and, as if the
// worker stored it (at once, or after storeAfter when set; never when
// neverStore), lists it newest first from then on and announces it on its
// event stream.
type fakeAPIServer struct {
	mu         sync.Mutex
	techs      []techlist.Tech // newest first
	pending    map[string]string
	posts      []string
	reads      int
	storeAfter time.Duration
	neverStore bool
	streams    []chan techlist.Tech
}

func newFakeAPIServer(t *testing.T, techs ...techlist.Tech) (*fakeAPIServer, *httptest.Server) {
	t.Helper()
	f := &fakeAPIServer{techs: techs, pending: map[string]string{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	})
	mux.HandleFunc("GET /api/v1/techs", f.list)
	mux.HandleFunc("POST /api/v1/techs", f.create)
	mux.HandleFunc("GET /api/v1/techs/{id}", f.get)
	mux.HandleFunc("GET /api/v1/stats", f.stats)
	mux.HandleFunc("GET /api/v1/events", f.events)
	srv := httptest.NewUnstartedServer(mux)
	srv.Config.RegisterOnShutdown(f.closeStreams)
	srv.Start()
	t.Cleanup(func() {
		f.closeStreams()
		srv.Close()
	})
	return f, srv
}

func (f *fakeAPIServer) list(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	limit, err := strconv.Atoi(r.URL.Query().Get("limit"))
	if err != nil || limit < 1 {
		limit = 20
	}
	data := f.techs
	if c := r.URL.Query().Get("cursor"); c != "" {
		for i, t := range f.techs {
			if t.ID == c {
				data = f.techs[i+1:]
			}
		}
	}
	var next *string
	if len(data) > limit {
		data = data[:limit]
		id := data[limit-1].ID
		next = &id
	}
	// Every other read is a cache hit, as with a warm Redis.
	f.reads++
	cached := f.reads%2 == 0
	w.Header().Set("Content-Type", "application/json")
	if cached {
		w.Header().Set("X-Cache", "HIT")
	} else {
		w.Header().Set("X-Cache", "MISS")
	}
	json.NewEncoder(w).Encode(map[string]any{"data": data, "next_cursor": next, "cached": cached})
}

func (f *fakeAPIServer) get(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	id := r.PathValue("id")
	w.Header().Set("Content-Type", "application/json")
	for _, t := range f.techs {
		if t.ID == id {
			json.NewEncoder(w).Encode(t)
			return
		}
	}
	if _, ok := f.pending[id]; ok {
		w.WriteHeader(http.StatusAccepted)
		json.NewEncoder(w).Encode(map[string]string{"id": id, "status": "pending"})
		return
	}
	w.WriteHeader(http.StatusNotFound)
	io.WriteString(w, `{"error":{"code":"not_found","message":"no tech with that id"}}`)
}

func (f *fakeAPIServer) stats(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{
		"queue_mode":   "pubsub",
		"waiting":      len(f.pending),
		"total":        len(f.techs),
		"cache":        map[string]any{"hits": f.reads / 2, "misses": f.reads - f.reads/2, "bypasses": 0, "hit_ratio": 0.5},
		"live":         true,
		"generated_at": time.Now().UTC(),
	})
}

// events streams the techs stored from now on, as the api-server does.
func (f *fakeAPIServer) events(w http.ResponseWriter, r *http.Request) {
	ch := make(chan techlist.Tech, 16)
	f.mu.Lock()
	f.streams = append(f.streams, ch)
	f.mu.Unlock()
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	io.WriteString(w, "retry: 2000\n: connected\n\n")
	w.(http.Flusher).Flush()
	for {
		select {
		case <-r.Context().Done():
			return
		case t, ok := <-ch:
			if !ok {
				return
			}
			b, _ := json.Marshal(techlist.Event{Type: techlist.EventTechCreated, Tech: t})
			fmt.Fprintf(w, "id: %s\nevent: tech.created\ndata: %s\n\n", t.ID, b)
			w.(http.Flusher).Flush()
		}
	}
}

func (f *fakeAPIServer) closeStreams() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, ch := range f.streams {
		close(ch)
	}
	f.streams = nil
}

func (f *fakeAPIServer) create(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Text string `json:"text"`
	}
	w.Header().Set("Content-Type", "application/json")
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, `{"error":{"code":"invalid","message":"body must be JSON"}}`)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.posts = append(f.posts, body.Text)
	now := time.Now().UTC()
	id := fakeID(now, len(f.posts))
	f.pending[id] = body.Text
	switch {
	case f.neverStore:
	case f.storeAfter > 0:
		time.AfterFunc(f.storeAfter, func() {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.store(id)
		})
	default:
		f.store(id)
	}
	w.Header().Set("Location", "/api/v1/techs/"+id)
	w.WriteHeader(http.StatusAccepted)
	json.NewEncoder(w).Encode(map[string]string{"id": id, "status": "queued"})
}

// store plays the worker storing id; f.mu is held.
func (f *fakeAPIServer) store(id string) {
	text, ok := f.pending[id]
	if !ok {
		return
	}
	delete(f.pending, id)
	submitted, _ := time.Parse(time.RFC3339Nano, idTimeForTest(id))
	t := techlist.Tech{ID: id, Text: text, Priority: techlist.PriorityMedium, SubmittedAt: submitted, CreatedAt: time.Now().UTC()}
	f.techs = append([]techlist.Tech{t}, f.techs...)
	for _, ch := range f.streams {
		select {
		case ch <- t:
		default:
		}
	}
}

// fakeID makes a UUIDv7-shaped id from a time and a sequence number.
func fakeID(at time.Time, n int) string {
	h := fmt.Sprintf("%012x", at.UnixMilli())
	return fmt.Sprintf("%s-%s-7000-8000-%012d", h[:8], h[8:], n)
}

func idTimeForTest(id string) string {
	ms, _ := strconv.ParseInt(id[0:8]+id[9:13], 16, 64)
	return time.UnixMilli(ms).UTC().Format(time.RFC3339Nano)
}

func (f *fakeAPIServer) posted() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.posts...)
}

// syncBuffer holds a service's log while the test reads it.
type syncBuffer = testenv.Buffer

// startApp runs the client-app through run against apiURL and waits until
// /healthz answers. It returns the app's base URL; stopping it is checked
// at cleanup: run must return nil once its context is cancelled.
func startApp(t *testing.T, apiURL string, extra ...string) string {
	t.Helper()
	port := testenv.FreePort(t)
	env := map[string]string{
		"PORT":       strconv.Itoa(port),
		"API_URL":    apiURL,
		"PAGE_SIZE":  "10",
		"LOG_FORMAT": "json",
		"LOG_LEVEL":  "debug",
	}
	for i := 0; i+1 < len(extra); i += 2 {
		env[extra[i]] = extra[i+1]
	}
	ctx, cancel := context.WithCancel(context.Background())
	logs := &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, nil, func(k string) string { return env[k] }, logs, logs)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("run: got %v, want nil after cancel", err)
			}
		case <-time.After(15 * time.Second):
			t.Errorf("run: did not return within 15s of cancel")
		}
		if t.Failed() {
			t.Logf("client-app logs:\n%s", logs.String())
		}
	})

	base := "http://127.0.0.1:" + strconv.Itoa(port)
	testenv.WaitStatus(t, base+"/healthz", http.StatusOK, 10*time.Second, done)
	return base
}

func TestRunEndToEnd(t *testing.T) {
	created := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	api, apiSrv := newFakeAPIServer(t,
		techlist.Tech{ID: "2", Text: "<script>alert(1)</script>", Priority: techlist.PriorityHigh, CreatedAt: created},
		techlist.Tech{ID: "1", Text: "Redis", Priority: techlist.PriorityLow, CreatedAt: created},
	)
	base := startApp(t, apiSrv.URL)
	client := &http.Client{
		Timeout:       5 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}

	get := func(t *testing.T, path string) (*http.Response, string) {
		t.Helper()
		resp, err := client.Get(base + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("GET %s: read: %v", path, err)
		}
		return resp, string(body)
	}

	t.Run("healthcheck flag", func(t *testing.T) {
		u, _ := url.Parse(base)
		env := func(k string) string {
			if k == "PORT" {
				return u.Port()
			}
			return ""
		}
		if err := run(context.Background(), []string{"-healthcheck"}, env, io.Discard, io.Discard); err != nil {
			t.Errorf("run -healthcheck against the running app: got %v, want nil", err)
		}
		down := strconv.Itoa(testenv.FreePort(t))
		if err := run(context.Background(), []string{"-healthcheck"}, func(k string) string {
			if k == "PORT" {
				return down
			}
			return ""
		}, io.Discard, io.Discard); err == nil {
			t.Errorf("run -healthcheck against a closed port: got nil, want an error")
		}
	})

	t.Run("readyz", func(t *testing.T) {
		resp, _ := get(t, "/readyz")
		if resp.StatusCode != http.StatusOK {
			t.Errorf("status: got %d, want 200", resp.StatusCode)
		}
	})

	t.Run("list", func(t *testing.T) {
		resp, body := get(t, "/")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status: got %d, want 200", resp.StatusCode)
		}
		for _, want := range []string{"Tech Summary", "Redis", "&lt;script&gt;alert(1)&lt;/script&gt;", "<span data-count>2</span> shown", `id="last-read">MySQL</dd>`} {
			if !strings.Contains(body, want) {
				t.Errorf("body: got no %q", want)
			}
		}
		if strings.Contains(body, "<script>alert(1)</script>") {
			t.Errorf("body: got the item's script unescaped")
		}
		if got := resp.Header.Get("Content-Security-Policy"); !strings.Contains(got, "default-src 'self'") {
			t.Errorf("Content-Security-Policy: got %q", got)
		}
	})

	t.Run("post redirects", func(t *testing.T) {
		resp, err := client.PostForm(base+"/techs", url.Values{"text": {"  Go  "}})
		if err != nil {
			t.Fatalf("POST /techs: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("status: got %d, want 303", resp.StatusCode)
		}
		loc := resp.Header.Get("Location")
		if !strings.Contains(loc, "/?queued=") {
			t.Errorf("Location: got %q, want /?queued=<id>", loc)
		}
		if got := api.posted(); len(got) != 1 || got[0] != "Go" {
			t.Errorf("api-server got posts %q, want [Go]", got)
		}
		_, body := get(t, loc)
		// The fake api-server stores at once, so the notice says stored.
		for _, want := range []string{"Stored: your tech is in the list with its priority.", ">Go</p>", "<span data-count>3</span> shown", `id="last-read">Redis cache</dd>`} {
			if !strings.Contains(body, want) {
				t.Errorf("page after redirect: got no %q", want)
			}
		}
	})

	t.Run("post invalid", func(t *testing.T) {
		resp, err := client.PostForm(base+"/techs", url.Values{"text": {""}})
		if err != nil {
			t.Fatalf("POST /techs: %v", err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("status: got %d, want 400", resp.StatusCode)
		}
		if !strings.Contains(string(body), "Text is required") {
			t.Errorf("body: got no validation message")
		}
	})
}

func TestRunReportsBadStart(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"port", nil, map[string]string{"PORT": "http"}, "PORT"},
		{"page size", nil, map[string]string{"PAGE_SIZE": "500"}, "PAGE_SIZE"},
		{"api url", nil, map[string]string{"API_URL": "localhost:5000"}, "API_URL"},
		{"timeout", nil, map[string]string{"API_TIMEOUT": "soon"}, "API_TIMEOUT"},
		{"zero timeout", nil, map[string]string{"API_TIMEOUT": "0"}, "API_TIMEOUT"},
		{"queued timeout", nil, map[string]string{"QUEUED_TIMEOUT": "half a minute"}, "QUEUED_TIMEOUT"},
		{"zero queued timeout", nil, map[string]string{"QUEUED_TIMEOUT": "0"}, "QUEUED_TIMEOUT"},
		{"shutdown timeout", nil, map[string]string{"SHUTDOWN_TIMEOUT": "soon"}, "SHUTDOWN_TIMEOUT"},
		{"admin address", nil, map[string]string{"ADMIN_ADDR": "6060"}, "ADMIN_ADDR"},
		{"log level", nil, map[string]string{"LOG_LEVEL": "loud"}, "LOG_LEVEL"},
		{"unknown flag", []string{"-verbose"}, nil, "verbose"},
		{"stray argument", []string{"serve"}, nil, "unexpected arguments"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			err := run(ctx, tt.args, func(k string) string { return tt.env[k] }, io.Discard, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("run: got %v, want an error naming %s", err, tt.want)
			}
		})
	}
}

// ADMIN_ADDR serves pprof on a listener of its own; the public port never
// does.
func TestRunAdminListener(t *testing.T) {
	_, apiSrv := newFakeAPIServer(t)
	admin := "127.0.0.1:" + strconv.Itoa(testenv.FreePort(t))
	base := startApp(t, apiSrv.URL, "ADMIN_ADDR", admin)
	for url, want := range map[string]int{"http://" + admin + "/debug/pprof/": 200, base + "/debug/pprof/": 404} {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s: got %d, want %d", url, resp.StatusCode, want)
		}
	}
}
