package httpapi

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// TestMetricsLabelsAreBounded sends 300 junk methods and 300 unknown paths
// and counts the request series /metrics then holds: outside input must
// not grow them.
func TestMetricsLabelsAreBounded(t *testing.T) {
	f := newFixture(t)
	for i := range 300 {
		serve(t, f.handler, fmt.Sprintf("JUNK%03d", i), "/api/v1/techs", "", nil)
		serve(t, f.handler, fmt.Sprintf("X%d", i), fmt.Sprintf("/nope/%d", i), "", nil)
		serve(t, f.handler, http.MethodGet, fmt.Sprintf("/nope/%d/deeper", i), "", nil)
	}
	rec := serve(t, f.handler, http.MethodGet, "/metrics", "", nil)
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /metrics: got %d, want 200", rec.Code)
	}
	series, methods := 0, map[string]bool{}
	for line := range strings.Lines(rec.Body.String()) {
		if !strings.HasPrefix(line, "api_http_") {
			continue
		}
		series++
		if _, rest, ok := strings.Cut(line, `method="`); ok {
			m, _, _ := strings.Cut(rest, `"`)
			methods[m] = true
		}
	}
	// A few methods and routes, each at most a few statuses, times the
	// histogram's buckets: far below one series per junk request.
	if series > 100 {
		t.Errorf("api_http_* series after 900 junk requests: got %d, want at most 100", series)
	}
	if len(methods) > 3 {
		t.Errorf("method label values: got %d (%v), want at most 3", len(methods), keys(methods))
	}
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestMethodLabel(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"GET", "GET"}, {"POST", "POST"}, {"OPTIONS", "OPTIONS"}, {"HEAD", "HEAD"},
		{"get", "OTHER"}, {"JUNK", "OTHER"}, {"", "OTHER"},
	} {
		if got := methodLabel(tt.in); got != tt.want {
			t.Errorf("methodLabel(%q): got %q, want %q", tt.in, got, tt.want)
		}
	}
}

// Each request counts in the series of its own method, route and status,
// however many series were looked up before it.
func TestRequestSeriesByStatus(t *testing.T) {
	f := newFixture(t)
	for range 3 {
		serve(t, f.handler, http.MethodGet, "/api/v1/techs/not-an-id", "", nil)
	}
	f.reader.tech.JSON = []byte(`{"id":"x"}`)
	for range 2 {
		serve(t, f.handler, http.MethodGet, "/api/v1/techs/01890a5d-ac96-774b-bcce-000000000001", "", nil)
	}
	body := serve(t, f.handler, http.MethodGet, "/metrics", "", nil).Body.String()
	for _, want := range []string{
		`api_http_requests_total{method="GET",route="/api/v1/techs/{id}",status="404"} 3`,
		`api_http_requests_total{method="GET",route="/api/v1/techs/{id}",status="200"} 2`,
		`api_http_request_duration_seconds_count{method="GET",route="/api/v1/techs/{id}"} 5`,
	} {
		if !strings.Contains(body, want+"\n") {
			t.Errorf("/metrics has no line %s", want)
		}
	}
}
