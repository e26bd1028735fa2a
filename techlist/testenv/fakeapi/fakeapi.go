// Package fakeapi plays the api-server over HTTP for the client-app's
// tests: its list, single-tech, create, stats and event-stream routes, with
// a fake worker that stores each POST. The client-app's own tests and the
// browser tests in e2e share it.
package fakeapi

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
)

// Server plays the api-server: it records every POST and, as if the
// worker stored it (at once, or after StoreAfter when set; never after
// NeverStore), lists it newest first from then on and announces it on its
// event stream.
type Server struct {
	URL string // the base URL, e.g. http://127.0.0.1:41234

	mu         sync.Mutex
	techs      []techlist.Tech // newest first
	pending    map[string]string
	posts      []string
	reads      int
	storeAfter time.Duration
	neverStore bool
	streams    []chan techlist.Tech
}

// Start serves a fake api-server listing techs (newest first) until the
// test ends.
func Start(t testing.TB, techs ...techlist.Tech) *Server {
	t.Helper()
	f := &Server{techs: techs, pending: map[string]string{}}
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
	f.URL = srv.URL
	return f
}

// StoreAfter makes the fake worker store each later POST d after it.
func (f *Server) StoreAfter(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.storeAfter = d
}

// NeverStore makes the fake worker keep each later POST pending.
func (f *Server) NeverStore() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.neverStore = true
}

func (f *Server) list(w http.ResponseWriter, r *http.Request) {
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

func (f *Server) get(w http.ResponseWriter, r *http.Request) {
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

func (f *Server) stats(w http.ResponseWriter, r *http.Request) {
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
func (f *Server) events(w http.ResponseWriter, r *http.Request) {
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

func (f *Server) closeStreams() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, ch := range f.streams {
		close(ch)
	}
	f.streams = nil
}

func (f *Server) create(w http.ResponseWriter, r *http.Request) {
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
	id := ID(now, len(f.posts))
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
func (f *Server) store(id string) {
	text, ok := f.pending[id]
	if !ok {
		return
	}
	delete(f.pending, id)
	submitted, _ := time.Parse(time.RFC3339Nano, idTime(id))
	t := techlist.Tech{ID: id, Text: text, Priority: techlist.PriorityMedium, SubmittedAt: submitted, CreatedAt: time.Now().UTC()}
	f.techs = append([]techlist.Tech{t}, f.techs...)
	for _, ch := range f.streams {
		select {
		case ch <- t:
		default:
		}
	}
}

// ID makes a UUIDv7-shaped id from a time and a sequence number.
func ID(at time.Time, n int) string {
	h := fmt.Sprintf("%012x", at.UnixMilli())
	return fmt.Sprintf("%s-%s-7000-8000-%012d", h[:8], h[8:], n)
}

func idTime(id string) string {
	ms, _ := strconv.ParseInt(id[0:8]+id[9:13], 16, 64)
	return time.UnixMilli(ms).UTC().Format(time.RFC3339Nano)
}

// Posted returns the texts POSTed so far, in order.
func (f *Server) Posted() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.posts...)
}
