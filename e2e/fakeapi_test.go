package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/techlist/techlist"
	"github.com/techlist/techlist/testenv/stack"
)

// This fake api-server is the one client-app/main_test.go uses, kept here
// for the client-app's browser tests (clientapp_browser_test.go), which
// moved to this module so that the client-app does not require chromedp.

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

// startClientApp runs the built client-app against apiURL with PAGE_SIZE=10
// and extra (pairs of name, value) and waits until /healthz answers (not
// /readyz: the fake api-server has none). It returns the app's base URL. The
// app binds port 0 and the port is read from its log, as in startStack; at
// the end it gets SIGTERM and must exit 0.
func startClientApp(t *testing.T, apiURL string, extra ...string) string {
	t.Helper()
	vars := map[string]string{
		"PORT":       "0",
		"API_URL":    apiURL,
		"PAGE_SIZE":  "10",
		"LOG_FORMAT": "json",
		"LOG_LEVEL":  "debug",
	}
	for i := 0; i+1 < len(extra); i += 2 {
		vars[extra[i]] = extra[i+1]
	}
	s := stack.New(t, binDir)
	url := s.Add(t, "client-app", stack.Environ(vars))
	s.WaitReady(t, "client-app", "/healthz")
	return url
}
