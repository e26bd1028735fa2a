package e2e

import (
	"testing"

	"github.com/techlist/techlist/testenv/stack"
)

// startClientApp runs the built client-app against apiURL with PAGE_SIZE=10
// and extra (pairs of name, value) and waits until /healthz answers (not
// /readyz: the fake api-server has none). It returns the app's base URL. The
// app binds port 0 and the port is read from its log, as in startStack; at
// the end it gets SIGTERM and must exit 0.
func startClientApp(t *testing.T, apiURL string, extra ...string) string {
	t.Helper()
	vars := map[string]string{
		"PORT":       "0",
		"API_URL":    apiURL,
		"PAGE_SIZE":  "10",
		"LOG_FORMAT": "json",
		"LOG_LEVEL":  "debug",
	}
	for i := 0; i+1 < len(extra); i += 2 {
		vars[extra[i]] = extra[i+1]
	}
	s := stack.New(t, binDir)
	url := s.Add(t, "client-app", stack.Environ(vars))
	s.WaitReady(t, "client-app", "/healthz")
	return url
}
