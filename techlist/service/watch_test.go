package service

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// A problem is logged as an error when it appears and as resolved when it
// is gone, not at every ping (nor when only its numbers change); an error
// that kept the check from looking is no problem found.
func TestWatchLogsTransitions(t *testing.T) {
	var logged bytes.Buffer
	var problem string
	var lookErr error
	w := NewWatch("queue_mode", func(context.Context) (string, error) { return problem, lookErr },
		slog.New(slog.NewTextHandler(&logged, nil)))
	ctx := context.Background()
	count := func(s string) int { return strings.Count(logged.String(), s) }

	if err := w.Ping(ctx); err != nil || logged.Len() != 0 {
		t.Fatalf("no problem: got %v and log %q, want nil and nothing logged", err, logged.String())
	}
	for _, p := range []string{"modes differ (1)", "modes differ (2)"} {
		problem = p
		if err := w.Ping(ctx); err == nil || err.Error() != p {
			t.Errorf("problem %q: got %v, want it as the error", p, err)
		}
	}
	if n := count("level=ERROR"); n != 1 || !strings.Contains(logged.String(), "modes differ (1)") {
		t.Errorf("log %q: got %d errors, want 1 naming the problem", logged.String(), n)
	}
	lookErr = errors.New("redis down: dial tcp 10.0.0.7:6379: connect: connection refused")
	if err := w.Ping(ctx); err == nil || strings.Contains(err.Error(), "10.0.0.7") || !strings.Contains(err.Error(), "cannot tell now") {
		t.Errorf("check failed: got %v, want 'cannot tell now', without the driver's error (it may be shown in /readyz)", err)
	}
	problem, lookErr = "", nil
	if err := w.Ping(ctx); err != nil {
		t.Errorf("resolved: got %v, want nil", err)
	}
	if n, m := count("level=ERROR"), count("resolved: modes differ (2)"); n != 1 || m != 1 {
		t.Errorf("log %q: got %d errors and %d resolved, want 1 and 1", logged.String(), n, m)
	}
}

// Only a check that says so shows its error in the answer.
func TestReadyzExplainsOnlyWhatMayBeShown(t *testing.T) {
	h := Readyz(discard,
		Check{Name: "mysql", Ping: func(context.Context) error { return errors.New("dial tcp 10.1.2.3:3306") }},
		Check{Name: "queue_mode", Explain: true, Ping: func(context.Context) error { return errors.New("QUEUE_MODE differs") }},
	)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
	var body struct {
		Failing []string
		Details map[string]string
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatal(err)
	}
	if rec.Code != http.StatusServiceUnavailable || len(body.Failing) != 2 {
		t.Errorf("got %d %s, want 503 with both failing", rec.Code, rec.Body)
	}
	if len(body.Details) != 1 || body.Details["queue_mode"] != "QUEUE_MODE differs" {
		t.Errorf("details: got %v, want queue_mode's error only", body.Details)
	}
}
