package apiclient_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/techlist/client-app/internal/apiclient"
	"github.com/techlist/techlist"
)

const id1 = "01890a5d-ac96-774b-bcce-b302099a8057"

func TestStats(t *testing.T) {
	var gotPath string
	c := newClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotPath = r.URL.Path
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"queue_mode":"streams","waiting":null,"total":12,"cache":{"hits":9,"misses":1,"bypasses":0,"hit_ratio":0.9},"live":true,"generated_at":"2026-01-02T03:04:05Z"}`)
	}))
	s, err := c.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if gotPath != "/api/v1/stats" {
		t.Errorf("path: got %q", gotPath)
	}
	if s.QueueMode != "streams" || s.Waiting != nil || s.Total == nil || *s.Total != 12 || s.Cache.Hits != 9 ||
		s.Cache.HitRatio == nil || *s.Cache.HitRatio != 0.9 || !s.Live || s.GeneratedAt.IsZero() {
		t.Errorf("got %+v", s)
	}
}

func TestTech(t *testing.T) {
	tests := []struct {
		name        string
		id          string
		status      int
		body        string
		wantPending bool
		wantText    string
		wantStatus  int // of the *APIError
		wantErr     bool
	}{
		{"stored", id1, 200, `{"id":"` + id1 + `","text":"Go","priority":"low","created_at":"2026-01-02T03:04:05Z"}`, false, "Go", 0, false},
		{"pending", id1, 202, `{"id":"` + id1 + `","status":"pending"}`, true, "", 0, false},
		{"unknown", id1, 404, `{"error":{"code":"not_found","message":"no tech"}}`, false, "", 404, true},
		{"another id", id1, 200, `{"id":"01890a5d-ac96-774b-bcce-000000000000","text":"Go","priority":"low"}`, false, "", 0, true},
		{"not json", id1, 200, `nope`, false, "", 0, true},
		{"invalid id never sent", "../healthz", 200, `{}`, false, "", 404, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var gotPath string
			c := newClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				gotPath = r.URL.Path
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(tt.status)
				io.WriteString(w, tt.body)
			}))
			st, err := c.Tech(context.Background(), tt.id)
			if (err != nil) != tt.wantErr {
				t.Fatalf("got error %v, want error: %v", err, tt.wantErr)
			}
			if tt.wantStatus != 0 {
				if apiErr, ok := errors.AsType[*apiclient.APIError](err); !ok || apiErr.Status != tt.wantStatus {
					t.Errorf("got %v, want an *APIError with status %d", err, tt.wantStatus)
				}
			}
			if err == nil && (st.Pending != tt.wantPending || st.Tech.Text != tt.wantText) {
				t.Errorf("got %+v, want pending %v text %q", st, tt.wantPending, tt.wantText)
			}
			if tt.id == id1 && gotPath != "/api/v1/techs/"+id1 {
				t.Errorf("path: got %q", gotPath)
			}
			if tt.id != id1 && gotPath != "" {
				t.Errorf("path: got %q, want no request for an invalid id", gotPath)
			}
		})
	}
}

func TestListTechsMeasuresElapsed(t *testing.T) {
	c := newClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(20 * time.Millisecond)
		io.WriteString(w, `{"data":[],"next_cursor":null,"cached":false}`)
	}))
	res, err := c.ListTechs(context.Background(), 10, "")
	if err != nil {
		t.Fatal(err)
	}
	if res.Elapsed < 20*time.Millisecond || res.Elapsed > 5*time.Second {
		t.Errorf("Elapsed: got %v, want about 20ms", res.Elapsed)
	}
}

func event(id, text string) string {
	return `{"type":"tech.created","tech":{"id":"` + id + `","text":"` + text + `","priority":"high","created_at":"2026-01-02T03:04:05Z","submitted_at":"2026-01-02T03:04:04Z"}}`
}

func TestEventStreamParses(t *testing.T) {
	const id2 = "01890a5d-ac96-774b-bcce-000000000002"
	stream := "retry: 2000\n: connected\n\n" +
		"id: " + id1 + "\nevent: tech.created\ndata: " + event(id1, "Go") + "\n\n" +
		": heartbeat\n\n" +
		"event: something.else\ndata: {}\n\n" + // another event: skipped
		"event: tech.created\ndata: {\"type\":\"tech.created\",\"tech\":{\"id\":\"x\"}}\n\n" + // malformed: skipped
		"event: tech.created\ndata: " + event(id1, `bad\u0007`) + "\n\n" + // control character: skipped
		"event:tech.created\r\ndata:" + event(id2, "Redis") + "\n\n" // no space after the colon; a CR before LF
	s := apiclient.NewEventStream(io.NopCloser(strings.NewReader(stream)), 0)
	defer s.Close()
	for _, want := range []string{id1, id2} {
		ev, err := s.Next()
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		if ev.Tech.ID != want || ev.Type != techlist.EventTechCreated || ev.Tech.Priority != techlist.PriorityHigh {
			t.Errorf("got %+v, want the event of %s", ev, want)
		}
	}
	if _, err := s.Next(); !errors.Is(err, io.EOF) {
		t.Errorf("at the end: got %v, want io.EOF", err)
	}
}

func TestEventStreamIdle(t *testing.T) {
	pr, pw := io.Pipe()
	defer pw.Close()
	s := apiclient.NewEventStream(pr, 50*time.Millisecond)
	defer s.Close()
	go io.WriteString(pw, ": heartbeat\n\n")
	start := time.Now()
	_, err := s.Next()
	if !errors.Is(err, apiclient.ErrStreamIdle) || !apiclient.IsUnreachable(err) {
		t.Errorf("got %v, want ErrStreamIdle as a transport error", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("took %v, want about 50ms", took)
	}
}

func TestEvents(t *testing.T) {
	c := newClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/events" || r.Header.Get("Accept") != "text/event-stream" {
			t.Errorf("request: got %s with Accept %q", r.URL.Path, r.Header.Get("Accept"))
		}
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		io.WriteString(w, "retry: 2000\n\nevent: tech.created\ndata: "+event(id1, "Go")+"\n\n")
	}))
	s, err := c.Events(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ev, err := s.Next()
	if err != nil || ev.Tech.Text != "Go" {
		t.Errorf("got %+v, %v; want the Go event", ev, err)
	}

	// An error answer is an *APIError; no server a *TransportError.
	c = newClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, `{"error":{"code":"unavailable","message":"live events are not available"}}`)
	}))
	if _, err := c.Events(context.Background()); err == nil {
		t.Error("503: got no error")
	} else if apiErr, ok := errors.AsType[*apiclient.APIError](err); !ok || apiErr.Status != 503 {
		t.Errorf("503: got %v, want an *APIError", err)
	}
}

// The stream is not cut by the client's overall timeout, which bounds
// ordinary calls.
func TestEventsOutliveTheClientTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := newClientWithTimeout(t, 100*time.Millisecond, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		<-release
		io.WriteString(w, "event: tech.created\ndata: "+event(id1, "Late")+"\n\n")
	}))
	s, err := srv.Events(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	time.AfterFunc(300*time.Millisecond, func() { close(release) })
	ev, err := s.Next()
	if err != nil || ev.Tech.Text != "Late" {
		t.Errorf("got %+v, %v; want the event sent after the client's timeout", ev, err)
	}
}

func newClientWithTimeout(t *testing.T, timeout time.Duration, h http.Handler) *apiclient.Client {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	return apiclient.New(u, &http.Client{Timeout: timeout})
}
