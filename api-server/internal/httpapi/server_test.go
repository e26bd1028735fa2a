package httpapi

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/techlist/techlist"
	"github.com/techlist/techlist/redis"
	"github.com/techlist/techlist/service"

	"github.com/techlist/api-server/internal/cacheaside"
)

// The real adapters satisfy the interfaces the server declares.
var (
	_ Reader      = (*cacheaside.Reader)(nil)
	_ Publisher   = (*redis.Publisher)(nil)
	_ Publisher   = (*redis.Intake)(nil)
	_ Pending     = (*redis.Cache)(nil)
	_ Idempotency = (*redis.Idempotency)(nil)
)

// fakeReader answers reads with canned values and records what it was asked.
type fakeReader struct {
	mu         sync.Mutex
	listBody   []byte
	listStatus cacheaside.Status
	listErr    error
	listCalls  int
	gotLimit   int
	gotCursor  string
	tech       cacheaside.TechResult
	techErr    error
	techCalls  int
	gotID      string
	panicking  bool
}

func (f *fakeReader) List(ctx context.Context, limit int, cursor string) ([]byte, cacheaside.Status, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.panicking {
		panic("fake reader panics")
	}
	f.listCalls++
	f.gotLimit, f.gotCursor = limit, cursor
	if f.listErr != nil {
		return nil, "", f.listErr
	}
	return f.listBody, f.listStatus, nil
}

func (f *fakeReader) Tech(ctx context.Context, id string) (cacheaside.TechResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.panicking {
		panic("fake reader panics")
	}
	f.techCalls++
	f.gotID = id
	return f.tech, f.techErr
}

// fakePending keeps pending marks in a map.
type fakePending struct {
	mu      sync.Mutex
	marks   map[string]time.Duration
	cleared []string
	markErr error
}

func (f *fakePending) MarkPending(ctx context.Context, id string, ttl time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.markErr != nil {
		return f.markErr
	}
	if f.marks == nil {
		f.marks = make(map[string]time.Duration)
	}
	f.marks[id] = ttl
	return nil
}

func (f *fakePending) ClearPending(ctx context.Context, ids ...string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, id := range ids {
		delete(f.marks, id)
		f.cleared = append(f.cleared, id)
	}
	return nil
}

func (f *fakePending) isMarked(id string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.marks[id]
	return ok
}

// fakePublisher records envelopes. Like the Redis Intake, it sets the
// pending mark (for an hour) in the same call, before the publish: a
// refused or failed publish leaves the mark, which the server clears on a
// clear refusal; a mark that fails makes an unknown outcome.
type fakePublisher struct {
	mu        sync.Mutex
	pending   *fakePending
	err       error
	failFirst []error // returned by the first calls, in order, before err
	envelopes []techlist.Envelope
	attempts  int
}

func (f *fakePublisher) Publish(ctx context.Context, env techlist.Envelope) error {
	markErr := f.pending.MarkPending(ctx, env.ID, time.Hour)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.attempts++
	if len(f.failFirst) > 0 {
		err := f.failFirst[0]
		f.failFirst = f.failFirst[1:]
		return err
	}
	if f.err != nil {
		return f.err
	}
	if markErr != nil {
		return fmt.Errorf("queued, but the pending mark was not set: %w", markErr)
	}
	f.envelopes = append(f.envelopes, env)
	return nil
}

func (f *fakePublisher) published() []techlist.Envelope {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]techlist.Envelope(nil), f.envelopes...)
}

// fakeIdempotency keeps records in a map, with the same answers as the
// Redis implementation. A lease lasts until expire is called.
type fakeIdempotency struct {
	mu     sync.Mutex
	keys   map[string]*fakeRecord
	tokens int
	err    error
}

type fakeRecord struct {
	fp, id, state, token string
	expired              bool
}

func (f *fakeIdempotency) Reserve(ctx context.Context, key, fp, id string) (techlist.KeyReservation, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return techlist.KeyReservation{}, f.err
	}
	if f.keys == nil {
		f.keys = map[string]*fakeRecord{}
	}
	f.tokens++
	res := techlist.KeyReservation{Key: key, Fingerprint: fp, Token: fmt.Sprint(f.tokens)}
	rec, ok := f.keys[key]
	switch {
	case !ok:
		f.keys[key] = &fakeRecord{fp: fp, id: id, state: "inflight", token: res.Token}
		res.Outcome, res.ID = techlist.KeyReserved, id
	case rec.fp != fp:
		res.Outcome = techlist.KeyMismatch
	case rec.state == "done":
		res.Outcome, res.ID = techlist.KeyReplay, rec.id
	case rec.state == "inflight" && !rec.expired:
		res.Outcome, res.ID = techlist.KeyBusy, rec.id
	default:
		rec.state, rec.token, rec.expired = "inflight", res.Token, false
		res.Outcome, res.ID = techlist.KeyRetaken, rec.id
	}
	return res, nil
}

func (f *fakeIdempotency) settle(res techlist.KeyReservation, state string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	rec, ok := f.keys[res.Key]
	if ok && (rec.id != res.ID || rec.state == "done") {
		return
	}
	f.keys[res.Key] = &fakeRecord{fp: res.Fingerprint, id: res.ID, state: state}
}

func (f *fakeIdempotency) Confirm(ctx context.Context, res techlist.KeyReservation) error {
	f.settle(res, "done")
	return nil
}

func (f *fakeIdempotency) Unknown(ctx context.Context, res techlist.KeyReservation) error {
	f.settle(res, "unknown")
	return nil
}

func (f *fakeIdempotency) Release(ctx context.Context, res techlist.KeyReservation) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if rec, ok := f.keys[res.Key]; ok && rec.token == res.Token {
		delete(f.keys, res.Key)
	}
	return nil
}

// expire ends the lease of key's request in flight, as time would.
func (f *fakeIdempotency) expire(key string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if rec, ok := f.keys[key]; ok {
		rec.expired = true
	}
}

var testNow = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

const testMaxBody = 16 << 10

// fixture is a server over fakes.
type fixture struct {
	reader  *fakeReader
	pub     *fakePublisher
	pending *fakePending
	idem    *fakeIdempotency
	store   Idempotency // used instead of idem when set
	checks  []service.Check
	// rateLimit and rateBurst are Config.RateLimit and RateBurst.
	rateLimit float64
	rateBurst int
	ids       atomic.Int64
	handler   http.Handler
}

// newFixture builds a server over fresh fakes; change the fakes before
// sending requests.
func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{reader: &fakeReader{}, pending: &fakePending{}, idem: &fakeIdempotency{}}
	f.pub = &fakePublisher{pending: f.pending}
	f.checks = []service.Check{{Name: "fake", Ping: func(context.Context) error { return nil }}}
	f.handler = f.build(t)
	return f
}

func (f *fixture) build(t *testing.T) http.Handler {
	t.Helper()
	reg := prometheus.NewRegistry()
	var idem Idempotency = f.idem
	if f.store != nil {
		idem = f.store
	}
	return NewServer(Config{
		CORSOrigins:  []string{"http://localhost:3000"},
		MaxBodyBytes: testMaxBody,
		PublishRetry: time.Second,
		RateLimit:    f.rateLimit,
		RateBurst:    f.rateBurst,
	}, Deps{
		Logger:      slog.New(slog.NewTextHandler(io.Discard, nil)),
		Reader:      f.reader,
		Publisher:   f.pub,
		Pending:     f.pending,
		Idempotency: idem,
		Checks:      f.checks,
		Metrics:     NewMetrics(reg),
		Gatherer:    reg,
		NewID: func() (string, error) {
			return fmt.Sprintf("01890a5d-ac96-774b-bcce-%012x", f.ids.Add(1)), nil
		},
		Now: func() time.Time { return testNow },
	})
}

// serve sends one request to h and returns the recorded answer.
func serve(t *testing.T, h http.Handler, method, target, contentType string, body io.Reader, header ...string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, target, body)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// recorded reads a client's response into a recorder, for the checks above.
func recorded(t *testing.T, resp *http.Response) *httptest.ResponseRecorder {
	t.Helper()
	defer resp.Body.Close()
	rec := httptest.NewRecorder()
	rec.Code = resp.StatusCode
	for k, v := range resp.Header {
		rec.Header()[k] = v
	}
	if _, err := io.Copy(rec.Body, resp.Body); err != nil {
		t.Fatalf("read response: %v", err)
	}
	return rec
}

// apiError is the contract's error body.
type apiError struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Field   string `json:"field"`
	} `json:"error"`
}

// checkError checks that rec is the contract's JSON error with status and
// code, and returns it.
func checkError(t *testing.T, rec *httptest.ResponseRecorder, status int, code string) apiError {
	t.Helper()
	if rec.Code != status {
		t.Errorf("status: got %d, want %d (body %s)", rec.Code, status, rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type: got %q, want application/json", ct)
	}
	if got := rec.Header().Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control on an error: got %q, want no-store", got)
	}
	if got := rec.Header().Get("X-Content-Type-Options"); got != "nosniff" {
		t.Errorf("X-Content-Type-Options on an error: got %q, want nosniff", got)
	}
	var e apiError
	dec := json.NewDecoder(strings.NewReader(rec.Body.String()))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		t.Fatalf("error body %s: not the contract's error JSON: %v", rec.Body, err)
	}
	if e.Error.Code != code {
		t.Errorf("error.code: got %q, want %q (body %s)", e.Error.Code, code, rec.Body)
	}
	if e.Error.Message == "" {
		t.Errorf("error.message: got empty, want a message (body %s)", rec.Body)
	}
	return e
}

// decodeJSON decodes rec's body into a generic map, checking the Content-Type.
func decodeJSON(t *testing.T, rec *httptest.ResponseRecorder) map[string]any {
	t.Helper()
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type: got %q, want application/json", ct)
	}
	var m map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
		t.Fatalf("body %s: %v", rec.Body, err)
	}
	return m
}

func TestSeedRoot(t *testing.T) {
	f := newFixture(t)
	rec := serve(t, f.handler, http.MethodGet, "/", "", nil)
	if rec.Code != http.StatusOK || rec.Body.String() != "OK!" {
		t.Errorf("GET /: got %d %q, want 200 %q", rec.Code, rec.Body, "OK!")
	}
}

func TestHealthAndReadiness(t *testing.T) {
	f := newFixture(t)
	if rec := serve(t, f.handler, http.MethodGet, "/healthz", "", nil); rec.Code != http.StatusOK {
		t.Errorf("GET /healthz: got %d, want 200", rec.Code)
	}
	if rec := serve(t, f.handler, http.MethodGet, "/readyz", "", nil); rec.Code != http.StatusOK {
		t.Errorf("GET /readyz: got %d, want 200 (body %s)", rec.Code, rec.Body)
	}

	f.checks = []service.Check{
		{Name: "redis", Ping: func(context.Context) error { return errors.New("connection refused") }},
		{Name: "mysql", Ping: func(context.Context) error { return nil }},
	}
	h := f.build(t)
	rec := serve(t, h, http.MethodGet, "/readyz", "", nil)
	if rec.Code != http.StatusServiceUnavailable {
		t.Errorf("GET /readyz with redis down: got %d, want 503", rec.Code)
	}
	var body struct {
		Failing []string `json:"failing"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("readyz body %s: %v", rec.Body, err)
	}
	if len(body.Failing) != 1 || body.Failing[0] != "redis" {
		t.Errorf("readyz failing: got %v, want [redis]", body.Failing)
	}
}

func TestUnknownRouteAndMethod(t *testing.T) {
	tests := []struct {
		method, target string
		status         int
		code           string
	}{
		{http.MethodGet, "/nope", http.StatusNotFound, techlist.ENotFound},
		{http.MethodGet, "/api/v2/techs", http.StatusNotFound, techlist.ENotFound},
		{http.MethodGet, "/api/v1/techs/a/b", http.StatusNotFound, techlist.ENotFound},
		{http.MethodPut, "/api/v1/techs", http.StatusMethodNotAllowed, techlist.EMethod},
		{http.MethodDelete, "/api/v1/techs", http.StatusMethodNotAllowed, techlist.EMethod},
		{http.MethodDelete, "/api/v1/techs/01890a5d-ac96-774b-bcce-b302099a8057", http.StatusMethodNotAllowed, techlist.EMethod},
		{http.MethodPost, "/get", http.StatusMethodNotAllowed, techlist.EMethod},
		{http.MethodGet, "/create", http.StatusMethodNotAllowed, techlist.EMethod},
		{http.MethodPost, "/healthz", http.StatusMethodNotAllowed, techlist.EMethod},
	}
	f := newFixture(t)
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.target, func(t *testing.T) {
			rec := serve(t, f.handler, tt.method, tt.target, "", nil)
			checkError(t, rec, tt.status, tt.code)
		})
	}
}

func TestCORS(t *testing.T) {
	tests := []struct {
		name, origin string
		allowed      bool
	}{
		{"configured origin", "http://localhost:3000", true},
		{"other origin", "http://evil.example", false},
		{"other port", "http://localhost:3001", false},
	}
	f := newFixture(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := serve(t, f.handler, http.MethodOptions, "/api/v1/techs", "", nil,
				"Origin", tt.origin,
				"Access-Control-Request-Method", http.MethodPost,
				"Access-Control-Request-Headers", "Content-Type")
			got := rec.Header().Get("Access-Control-Allow-Origin")
			if tt.allowed {
				if rec.Code != http.StatusOK && rec.Code != http.StatusNoContent {
					t.Errorf("preflight status: got %d, want 200 or 204", rec.Code)
				}
				if got != tt.origin {
					t.Errorf("Access-Control-Allow-Origin: got %q, want %q", got, tt.origin)
				}
				if m := rec.Header().Get("Access-Control-Allow-Methods"); !strings.Contains(m, http.MethodPost) {
					t.Errorf("Access-Control-Allow-Methods: got %q, want POST in it", m)
				}
			} else if got != "" {
				t.Errorf("Access-Control-Allow-Origin: got %q, want none", got)
			}
			if f.reader.listCalls != 0 || len(f.pub.published()) != 0 {
				t.Error("a preflight reached a handler")
			}
		})
	}

	// An actual request from the allowed origin sees the exposed headers.
	f.reader.listBody, f.reader.listStatus = []byte(`{"data":[],"next_cursor":null}`), cacheaside.Hit
	rec := serve(t, f.handler, http.MethodGet, "/api/v1/techs", "", nil, "Origin", "http://localhost:3000")
	if got := rec.Header().Get("Access-Control-Allow-Origin"); got != "http://localhost:3000" {
		t.Errorf("GET with origin: Access-Control-Allow-Origin got %q, want http://localhost:3000", got)
	}
	if got := rec.Header().Get("Access-Control-Expose-Headers"); !strings.Contains(got, "X-Cache") {
		t.Errorf("Access-Control-Expose-Headers: got %q, want X-Cache in it", got)
	}
}

// A panicking handler answers a JSON 500, and the server goes on serving.
func TestPanicIsA500AndTheServerSurvives(t *testing.T) {
	f := newFixture(t)
	f.reader.panicking = true
	srv := httptest.NewServer(f.handler)
	defer srv.Close()

	for _, path := range []string{"/api/v1/techs", "/get", "/api/v1/techs/01890a5d-ac96-774b-bcce-b302099a8057"} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		rec := recorded(t, resp)
		checkError(t, rec, http.StatusInternalServerError, techlist.EInternal)
		if strings.Contains(rec.Body.String(), "fake reader panics") {
			t.Errorf("GET %s: the panic value leaked to the client: %s", path, rec.Body)
		}
	}

	resp, err := http.Get(srv.URL + "/")
	if err != nil {
		t.Fatalf("GET / after panics: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(b) != "OK!" {
		t.Errorf("GET / after panics: got %d %q, want 200 OK!", resp.StatusCode, b)
	}
}

func TestMetrics(t *testing.T) {
	f := newFixture(t)
	serve(t, f.handler, http.MethodGet, "/", "", nil)
	serve(t, f.handler, http.MethodPost, "/api/v1/techs", "application/json", strings.NewReader(`{"text":"Go"}`))

	rec := serve(t, f.handler, http.MethodGet, "/metrics", "", nil)
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /metrics: got %d, want 200", rec.Code)
	}
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type: got %q, want text/plain", ct)
	}
	body := rec.Body.String()
	for _, want := range []string{
		"# TYPE api_http_requests_total counter",
		`api_http_requests_total{method="GET",route="/",status="200"} 1`,
		`api_publishes_total{result="ok"} 1`,
		"api_http_request_duration_seconds_bucket",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics: want %q in\n%s", want, body)
		}
	}
}

func TestRequestIDIsEchoed(t *testing.T) {
	f := newFixture(t)
	rec := serve(t, f.handler, http.MethodGet, "/", "", nil, "X-Request-Id", "abc-123")
	if got := rec.Header().Get("X-Request-Id"); got != "abc-123" {
		t.Errorf("X-Request-Id: got %q, want abc-123", got)
	}
	rec = serve(t, f.handler, http.MethodGet, "/", "", nil)
	if got := rec.Header().Get("X-Request-Id"); got == "" {
		t.Error("X-Request-Id: got none, want a new one")
	}
}

// TestMalformedHTTPIsRefusedBeforeTheHandler pins the one documented
// exception to "every error is JSON": a header that is not valid HTTP
// (byte 0x7f in a value) is refused by net/http itself, 400 in plain text,
// and never reaches the handler.
func TestMalformedHTTPIsRefusedBeforeTheHandler(t *testing.T) {
	f := newFixture(t)
	f.reader.panicking = true // reaching the handler would answer 500
	srv := httptest.NewServer(f.handler)
	defer srv.Close()
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /api/v1/techs HTTP/1.1\r\nHost: x\r\nX-Request-Id: a\x7fb\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Errorf("header with 0x7f: got %s %q, want net/http's plain-text 400", resp.Status, resp.Header.Get("Content-Type"))
	}
}
