package web_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/techlist/client-app/internal/apiclient"
	"github.com/techlist/client-app/internal/web"
	"github.com/techlist/techlist"
	"github.com/techlist/techlist/testenv"
)

// countingUpstream is an api-server that counts the event streams opened
// on it and the reads of its numbers.
type countingUpstream struct {
	*fakeAPI
	mu         sync.Mutex
	opens      []*io.PipeWriter // one per open stream
	statsCalls int
}

func (u *countingUpstream) Events(ctx context.Context) (*apiclient.EventStream, error) {
	pr, pw := io.Pipe()
	u.mu.Lock()
	u.opens = append(u.opens, pw)
	u.mu.Unlock()
	return apiclient.NewEventStream(pr, 0), nil
}

func (u *countingUpstream) Stats(ctx context.Context) (apiclient.Stats, error) {
	u.mu.Lock()
	u.statsCalls++
	u.mu.Unlock()
	return u.fakeAPI.Stats(ctx)
}

func (u *countingUpstream) counts() (opens, stats int) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.opens), u.statsCalls
}

func (u *countingUpstream) latest() *io.PipeWriter {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.opens[len(u.opens)-1]
}

// Many open pages share one upstream connection and one read of the
// numbers per interval; the last page to leave closes the connection.
func TestEventsShareOneUpstream(t *testing.T) {
	total := int64(3)
	up := &countingUpstream{fakeAPI: &fakeAPI{stats: apiclient.Stats{QueueMode: "pubsub", Total: &total, Live: true}}}
	h := newHandlerWith(t, up, web.Config{PageSize: pageSize, StatsInterval: time.Hour})
	srv := httptest.NewServer(h)
	// Run before openSSE's cleanups: the streams end, then the server.
	t.Cleanup(srv.Close)
	t.Cleanup(h.CloseStreams)

	const pages = 8
	var open []*sse
	var resps []*http.Response
	for range pages {
		s, resp := openSSE(t, srv, "/events")
		s.next("status")
		s.next("stats")
		open, resps = append(open, s), append(resps, resp)
	}
	if opens, stats := up.counts(); opens != 1 || stats != 1 {
		t.Fatalf("%d open pages: got %d upstream streams and %d reads of the numbers, want 1 and 1", pages, opens, stats)
	}

	// An event reaches every page; the numbers are then read again once.
	(&upstream{w: up.latest()}).event(t, techEvent(t, techlist.Tech{
		ID: v7(time.Now(), 1), Text: "Shared", Priority: techlist.PriorityLow, SubmittedAt: time.Now(), CreatedAt: time.Now(),
	}))
	for i, s := range open {
		if _, data := s.next("tech"); !strings.Contains(data, `"text":"Shared"`) {
			t.Errorf("page %d: got %s, want the shared event", i, data)
		}
		s.next("stats")
	}
	if _, stats := up.counts(); stats != 2 {
		t.Errorf("reads of the numbers after one stored tech, %d pages: got %d, want 2", pages, stats)
	}

	// The last page leaving closes the upstream stream; the next page
	// opens a new one.
	for _, resp := range resps {
		resp.Body.Close()
	}
	testenv.Eventually(t, "the upstream stream closed", func() bool {
		_, err := io.WriteString(up.latest(), ": ping\n\n")
		return err != nil
	})
	s, _ := openSSE(t, srv, "/events")
	s.next("status")
	if opens, _ := up.counts(); opens != 2 {
		t.Errorf("upstream streams after all pages left and one came back: got %d, want 2", opens)
	}
}

// Past MaxStreams open streams, one more is refused with 503.
func TestEventsStreamsAreCapped(t *testing.T) {
	up := &countingUpstream{fakeAPI: &fakeAPI{}}
	h := newHandlerWith(t, up, web.Config{PageSize: pageSize, MaxStreams: 2})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	t.Cleanup(h.CloseStreams)
	var resps []*http.Response
	for range 2 {
		s, resp := openSSE(t, srv, "/events")
		s.next("status")
		resps = append(resps, resp)
	}
	resp, err := srv.Client().Get(srv.URL + "/events")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("stream past the cap: got %d (Retry-After %q), want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	resps[0].Body.Close()
	testenv.Eventually(t, "a stream's place freed", func() bool {
		resp, err := srv.Client().Get(srv.URL + "/events?probe")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

// While the api-server is down, pages reconnecting do not each read the
// numbers: they share one read per interval.
func TestEventsAPIDownSharesTheNumbers(t *testing.T) {
	api := &fakeAPI{statsErr: &apiclient.TransportError{Op: "stats", Err: io.ErrUnexpectedEOF}}
	up := &countingUpstream{fakeAPI: api}
	down := &downUpstream{countingUpstream: up}
	srv := httptest.NewServer(newHandlerWith(t, down, web.Config{PageSize: pageSize, StatsInterval: time.Hour}))
	defer srv.Close()
	for range 5 {
		s, _ := openSSE(t, srv, "/events")
		s.next("stats")
		s.next("status")
	}
	if _, stats := up.counts(); stats != 1 {
		t.Errorf("reads of the numbers for 5 pages while the api-server is down: got %d, want 1", stats)
	}
}

// downUpstream's event stream never opens.
type downUpstream struct{ *countingUpstream }

func (d *downUpstream) Events(ctx context.Context) (*apiclient.EventStream, error) {
	return nil, &apiclient.TransportError{Op: "events", Err: io.ErrUnexpectedEOF}
}
