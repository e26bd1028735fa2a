package main

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/techlist/techlist"
	"github.com/techlist/techlist/testenv"
	"github.com/techlist/techlist/testenv/fakeapi"
)

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
	api := fakeapi.Start(t,
		techlist.Tech{ID: "2", Text: "<script>alert(1)</script>", Priority: techlist.PriorityHigh, CreatedAt: created},
		techlist.Tech{ID: "1", Text: "Redis", Priority: techlist.PriorityLow, CreatedAt: created},
	)
	base := startApp(t, api.URL)
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
		if got := api.Posted(); len(got) != 1 || got[0] != "Go" {
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

// An API_URL that does not parse is refused without its password in the
// error main prints.
func TestRunHidesAPIURLPassword(t *testing.T) {
	for _, u := range []string{"http://user:S3cretPW@127.0.0.1:notaport", "http://user:S3cret PW@127.0.0.1:1", "http://user:S3cretPW%zz@127.0.0.1:1"} {
		err := run(context.Background(), nil, func(k string) string { return map[string]string{"API_URL": u}[k] }, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "API_URL") || strings.Contains(err.Error(), "S3cret") {
			t.Errorf("API_URL=%q: got %v, want an error naming API_URL without the password", u, err)
		}
	}
}

// ADMIN_ADDR serves pprof on a listener of its own; the public port never
// does.
func TestRunAdminListener(t *testing.T) {
	api := fakeapi.Start(t)
	admin := "127.0.0.1:" + strconv.Itoa(testenv.FreePort(t))
	base := startApp(t, api.URL, "ADMIN_ADDR", admin)
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
