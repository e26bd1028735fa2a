package httpapi

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/techlist/api-server/internal/cacheaside"
)

// post sends a POST of a valid tech to route from the client at remoteAddr,
// with more headers as name, value pairs.
func post(t *testing.T, h http.Handler, route, remoteAddr string, header ...string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, route, strings.NewReader(`{"text":"Go"}`))
	req.RemoteAddr = remoteAddr
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// TestRateLimitPerClientIP: past RATE_BURST POSTs at once (both POST
// routes share the budget), a client IP gets the contract's 429 with
// Retry-After, and nothing is published; another IP, and GETs, are not
// limited; X-Forwarded-For does not make a new client.
func TestRateLimitPerClientIP(t *testing.T) {
	f := &fixture{reader: &fakeReader{listBody: []byte(listPage), listStatus: cacheaside.Hit}, pending: &fakePending{}, idem: &fakeIdempotency{}, rateLimit: 1, rateBurst: 2}
	f.pub = &fakePublisher{pending: f.pending}
	h := f.build(t)
	const client, other = "192.0.2.1:40000", "192.0.2.2:40000"

	for _, route := range createRoutes {
		if rec := post(t, h, route, client); rec.Code != http.StatusAccepted {
			t.Fatalf("POST %s within the burst: got %d, want 202 (body %s)", route, rec.Code, rec.Body)
		}
	}
	for _, route := range createRoutes {
		rec := post(t, h, route, "192.0.2.1:40001", "X-Forwarded-For", "198.51.100.7")
		checkError(t, rec, http.StatusTooManyRequests, "rate_limited")
		if got := rec.Header().Get("Retry-After"); got != "1" {
			t.Errorf("POST %s past the burst: Retry-After got %q, want 1", route, got)
		}
	}
	if n := len(f.pub.published()); n != 2 {
		t.Errorf("published: got %d envelopes, want the 2 allowed", n)
	}
	if rec := post(t, h, "/api/v1/techs", other); rec.Code != http.StatusAccepted {
		t.Errorf("POST from another IP: got %d, want 202", rec.Code)
	}
	if rec := post(t, h, "/api/v1/techs", "[2001:db8::1]:40000"); rec.Code != http.StatusAccepted {
		t.Errorf("POST from an IPv6 client: got %d, want 202", rec.Code)
	}
	get := httptest.NewRequest(http.MethodGet, "/api/v1/techs", nil)
	get.RemoteAddr = client
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, get)
	if rec.Code != http.StatusOK {
		t.Errorf("GET from the limited IP: got %d, want 200", rec.Code)
	}
}

// TestRateBurstDefaultsToTwiceTheRate: with RATE_BURST unset, a client may
// send twice RATE_LIMIT at once.
func TestRateBurstDefaultsToTwiceTheRate(t *testing.T) {
	f := &fixture{reader: &fakeReader{}, pending: &fakePending{}, idem: &fakeIdempotency{}, rateLimit: 2}
	f.pub = &fakePublisher{pending: f.pending}
	h := f.build(t)
	for i := range 4 {
		if rec := post(t, h, "/api/v1/techs", "192.0.2.1:1"); rec.Code != http.StatusAccepted {
			t.Fatalf("POST %d of 4: got %d, want 202", i+1, rec.Code)
		}
	}
	checkError(t, post(t, h, "/api/v1/techs", "192.0.2.1:1"), http.StatusTooManyRequests, "rate_limited")
}

// TestNoRateLimitByDefault: with RATE_LIMIT 0 nothing is limited.
func TestNoRateLimitByDefault(t *testing.T) {
	f := newFixture(t)
	for i := range 50 {
		if rec := post(t, f.handler, "/create", "192.0.2.1:1"); rec.Code != http.StatusAccepted {
			t.Fatalf("POST %d: got %d, want 202", i+1, rec.Code)
		}
	}
}
