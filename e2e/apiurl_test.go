package e2e

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/techlist/techlist/testenv"
	"github.com/techlist/techlist/testenv/stack"
)

// API_URL may hold a path, as behind a reverse proxy that serves the API
// under a prefix: the client-app joins it to every route.
func TestClientAppBehindAPathPrefix(t *testing.T) {
	t.Parallel()
	s := startStack(t, nil)
	upstream, _ := url.Parse(s.APIURL)
	proxy := httputil.NewSingleHostReverseProxy(upstream)
	prefixed := httptest.NewServer(http.StripPrefix("/prefix", proxy))
	t.Cleanup(prefixed.Close)

	app := s.Add(t, "client-app#2", stack.Environ(map[string]string{"API_URL": prefixed.URL + "/prefix", "LOG_FORMAT": "text"}))
	s.WaitReady(t, "client-app#2", "/readyz")
	getPage(t, app+"/")
	stored := watchStored(t, s)
	code, id, _ := postForm(t, app, "behind a prefix "+testenv.Suffix(), pageFormKey(t, getPage(t, app+"/")))
	if code != http.StatusSeeOther || id == "" {
		t.Fatalf("POST the form: got %d with queued id %q, want 303 with an id", code, id)
	}
	stored(id)
}

// An API_URL whose path the api-server does not serve is the client-app's
// configuration at fault, not the visitor's request: the page answers 502
// and says so, nothing is submitted, readiness fails naming API_URL, and
// the log names API_URL.
func TestClientAppWithAWrongAPIPath(t *testing.T) {
	t.Parallel()
	s := startStack(t, nil)
	app := s.Add(t, "client-app#2", stack.Environ(map[string]string{"API_URL": s.APIURL + "/prefix", "LOG_FORMAT": "text"}))
	s.WaitReady(t, "client-app#2", "/healthz")

	code, body := fetch(t, http.MethodGet, app+"/")
	if code != http.StatusBadGateway || !strings.Contains(body, "API_URL") {
		t.Errorf("GET /: got %d, want 502 naming API_URL; page:\n%s", code, body)
	}
	code, _, page := postForm(t, app, "lost on the way "+testenv.Suffix(), "")
	if code != http.StatusBadGateway || !strings.Contains(page, "not submitted") {
		t.Errorf("POST the form: got %d, want 502 saying it was not submitted; page:\n%s", code, page)
	}
	code, body = fetch(t, http.MethodGet, app+"/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "API_URL") {
		t.Errorf("GET /readyz: got %d %q, want 503 naming API_URL", code, body)
	}
	// The log arrives through a pipe, a moment after the answer.
	testenv.Eventually(t, "a log line naming API_URL", func() bool {
		return strings.Contains(s.Logs(t, "client-app#2"), "check API_URL")
	})

	// API_URL at another of the programs, which also answers /healthz 200:
	// not ready, naming API_URL and the program that answered.
	for _, other := range []string{s.WorkerURL, s.ClientURL} {
		name := "client-app#" + strconv.Itoa(3+strings.Count(other, s.ClientURL))
		wrong := s.Add(t, name, stack.Environ(map[string]string{"API_URL": other, "LOG_FORMAT": "text"}))
		s.WaitReady(t, name, "/healthz")
		if code, body := fetch(t, http.MethodGet, wrong+"/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "API_URL") {
			t.Errorf("API_URL at %s: GET /readyz got %d %q, want 503 naming API_URL", other, code, body)
		}
	}
}

func fetch(t *testing.T, method, url string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
