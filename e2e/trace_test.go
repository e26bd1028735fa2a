package e2e

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/techlist/techlist/testenv"
)

// One request id follows a tech from the browser's POST to the client-app,
// through the api-server's log line and the envelope, to the worker's
// "stored" line for that record.
func TestRequestIDTravelsToTheWorkerLog(t *testing.T) {
	t.Parallel()
	s := startStack(t, map[string]string{"TASK_COST": "0"})
	stored := watchStored(t, s)
	reqID := "trace-" + testenv.Suffix()

	req, err := http.NewRequest("POST", s.ClientURL+"/techs", strings.NewReader(url.Values{"text": {"traced " + reqID}}.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Request-Id", reqID)
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("X-Request-Id") != reqID {
		t.Fatalf("POST /techs: got %s with X-Request-Id %q, want 303 with %q", resp.Status, resp.Header.Get("X-Request-Id"), reqID)
	}
	loc, _ := url.Parse(resp.Header.Get("Location"))
	id := loc.Query().Get("queued")
	stored(id)

	for name, want := range map[string]string{
		"client-app":    "request_id=" + reqID,
		"api-server":    "request_id=" + reqID,
		"worker-server": "id=" + id + " request_id=" + reqID,
	} {
		testenv.Eventually(t, name+" logging "+want, func() bool {
			return strings.Contains(s.Logs(t, name), want)
		})
	}
}
