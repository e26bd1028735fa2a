package httpapi

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// holding serves /hold by waiting for release, and anything else with 204.
type holding struct{ entered, release chan struct{} }

func newHolding() *holding {
	return &holding{entered: make(chan struct{}), release: make(chan struct{})}
}

func (h *holding) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/hold" {
		h.entered <- struct{}{}
		<-h.release
	}
	w.WriteHeader(http.StatusNoContent)
}

// hold starts n requests to /hold through handler, returns once all are
// inside, and returns a channel that says when each has been answered.
func (h *holding) hold(handler http.Handler, n int) <-chan struct{} {
	done := make(chan struct{}, n)
	for range n {
		go func() {
			handler.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/hold", nil))
			done <- struct{}{}
		}()
		<-h.entered
	}
	return done
}

// TestShedLoadAnswers503PastMaxInFlight: with two requests being served,
// a third is answered 503 unavailable with Retry-After at once, without
// reaching the handler; once one has finished, the next is served again.
func TestShedLoadAnswers503PastMaxInFlight(t *testing.T) {
	inner := newHolding()
	h := shedLoad(2, 1<<10, slog.New(slog.NewTextHandler(io.Discard, nil)))(inner)
	done := inner.hold(h, 2)

	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/next", nil))
	var body errorBody
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || rec.Code != http.StatusServiceUnavailable ||
		body.Error.Code != "unavailable" || rec.Header().Get("Retry-After") != "1" {
		t.Errorf("a third request with two in flight: got %d %q Retry-After %q, want 503 unavailable, Retry-After 1",
			rec.Code, rec.Body, rec.Header().Get("Retry-After"))
	}

	inner.release <- struct{}{}
	<-done
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/next", nil))
	if rec.Code != http.StatusNoContent {
		t.Errorf("with one in flight: got %d, want the handler's 204", rec.Code)
	}
	inner.release <- struct{}{}
	<-done
}

// TestShedLoadOffWithZero: with MAX_INFLIGHT=0 any number of requests are
// served at once.
func TestShedLoadOffWithZero(t *testing.T) {
	inner := newHolding()
	done := inner.hold(shedLoad(0, 1<<10, slog.Default())(inner), 50) // returns only once all 50 are inside
	close(inner.release)
	for range 50 {
		<-done
	}
}

// TestShedLoadSlowBodyHoldsNoSlot: a request still sending its body does
// not hold one of the slots, so with one slot another request is served
// meanwhile; the slow one then gets its whole body, and one over the
// limit still reaches the handler's own size check.
func TestShedLoadSlowBodyHoldsNoSlot(t *testing.T) {
	h := shedLoad(1, 8, slog.New(slog.NewTextHandler(io.Discard, nil)))(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 8))
		if err != nil {
			w.WriteHeader(http.StatusRequestEntityTooLarge)
			return
		}
		w.WriteHeader(http.StatusOK)
		w.Write(b)
	}))
	body, upload := io.Pipe()
	slow := make(chan *httptest.ResponseRecorder)
	go func() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/", body))
		slow <- rec
	}()
	upload.Write([]byte("tech")) // the body has begun, and stalls

	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	if rec.Code != http.StatusOK {
		t.Errorf("a request while another's body trickles in: got %d, want 200", rec.Code)
	}
	upload.Write([]byte("list"))
	upload.Close()
	if got := <-slow; got.Code != http.StatusOK || got.Body.String() != "techlist" {
		t.Errorf("the slow request: got %d %q, want 200 \"techlist\"", got.Code, got.Body)
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/", strings.NewReader("a body over eight bytes")))
	if rec.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("a body over the limit: got %d, want the handler's 413", rec.Code)
	}
}
