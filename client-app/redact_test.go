package main

import (
	"context"
	"github.com/techlist/techlist/testenv"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

// A password in API_URL never reaches a log line or an error, whatever
// goes wrong with the api-server.
func TestRunDoesNotLogTheAPIPassword(t *testing.T) {
	const password = "s3cret-pw"
	// An api-server that cuts every connection after reading the request,
	// so each call fails with an error naming the URL.
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.ReadAll(r.Body)
		if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
			conn.Close()
		}
	}))
	defer api.Close()
	apiURL := strings.Replace(api.URL, "http://", "http://techlist:"+password+"@", 1)

	port := testenv.FreePort(t)
	env := map[string]string{"PORT": strconv.Itoa(port), "API_URL": apiURL, "LOG_FORMAT": "json", "LOG_LEVEL": "debug", "API_TIMEOUT": "2s"}
	ctx, cancel := context.WithCancel(context.Background())
	logs := &syncBuffer{}
	done := make(chan error, 1)
	go func() { done <- run(ctx, nil, func(k string) string { return env[k] }, logs, logs) }()
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	testenv.WaitStatus(t, base+"/healthz", http.StatusOK, 10*time.Second, done)

	c := &http.Client{Timeout: 10 * time.Second}
	for _, send := range []func() (*http.Response, error){
		func() (*http.Response, error) { return c.Get(base + "/") },
		func() (*http.Response, error) { return c.Get(base + "/readyz") },
		func() (*http.Response, error) { return c.PostForm(base+"/techs", url.Values{"text": {"Go"}}) },
	} {
		resp, err := send()
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("run: got %v, want nil after cancel", err)
	}
	if got := logs.String(); strings.Contains(got, password) || !strings.Contains(got, "techlist:xxxxx@") {
		t.Errorf("logs: want the API_URL shown with its password redacted, and the password nowhere; got\n%s", got)
	}

	// Nor does the error for an API_URL that is refused at start.
	bad := map[string]string{"API_URL": "ftp://techlist:" + password + "@localhost:5000"}
	err := run(context.Background(), nil, func(k string) string { return bad[k] }, io.Discard, io.Discard)
	if err == nil || strings.Contains(err.Error(), password) {
		t.Errorf("run with a bad API_URL: got %v, want an error without the password", err)
	}
}
