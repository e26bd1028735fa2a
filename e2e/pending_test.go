package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/techlist/techlist"
	"github.com/techlist/techlist/testenv"
)

// TestAcceptedTechNotLostWhileRedisIsCut: a tech accepted but not stored
// yet, read while the api-server cannot reach Redis (so it cannot read the
// pending mark), is 503 "cannot tell now", never 404; the client-app keeps
// showing it queued and keeps it in its cookie; once Redis is back and the
// worker runs, it is stored.
func TestAcceptedTechNotLostWhileRedisIsCut(t *testing.T) {
	t.Parallel()
	redisProxy := newFaultProxy(t, "redis", testenv.RedisAddr())
	// Streams mode accepts while no worker runs: the tech stays pending.
	s := startStack(t, map[string]string{"REDIS_ADDRS": redisProxy.Addr, "QUEUE_MODE": "streams", "TASK_COST": "0"})
	s.Stop(t, "worker-server")

	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noRedirect.PostForm(s.ClientURL+"/techs", url.Values{"text": {"accepted before the cut " + testenv.Suffix()}})
	if err != nil {
		t.Fatalf("POST the form: %v", err)
	}
	resp.Body.Close()
	loc, _ := url.Parse(resp.Header.Get("Location"))
	id := ""
	if loc != nil {
		id = loc.Query().Get("queued")
	}
	if resp.StatusCode != http.StatusSeeOther || !techlist.ValidID(id) {
		t.Fatalf("POST the form: got %s, Location %q; want 303 to /?queued=<id>", resp.Status, resp.Header.Get("Location"))
	}
	var cookie *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == "queued" {
			cookie = c
		}
	}
	if cookie == nil {
		t.Fatal("POST the form: no queued cookie")
	}
	techURL := s.APIURL + "/api/v1/techs/" + id
	get := func() (int, []byte) {
		t.Helper()
		resp, err := http.Get(techURL)
		if err != nil {
			t.Fatalf("GET %s: %v", techURL, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	if status, body := get(); status != http.StatusAccepted {
		t.Fatalf("GET before the cut: got %d %s, want 202 pending", status, body)
	}
	// The mark answers pending; streams mode keeps no index of the marks
	// (the stream's length counts what waits).
	rdb, _ := testenv.Redis(t)
	if n := rdb.Exists(t.Context(), s.Env("api-server", "REDIS_CACHE")+":pending-index").Val(); n != 0 {
		t.Errorf("streams mode: the pending index exists, want none kept")
	}

	redisProxy.Cut()
	testenv.Eventually(t, "the tech's read to notice Redis is gone", func() bool {
		status, body := get()
		if status == http.StatusNotFound {
			t.Fatalf("GET with Redis cut: got 404 %s for an accepted tech, want 503", body)
		}
		return status != http.StatusAccepted
	})
	status, body := get()
	var e struct {
		Error struct{ Code string } `json:"error"`
	}
	if err := json.Unmarshal(body, &e); status != http.StatusServiceUnavailable || err != nil || e.Error.Code != techlist.EUnavailable {
		t.Errorf("GET with Redis cut: got %d %s, want 503 coded unavailable", status, body)
	}

	// The page the redirect led to, read again: still queued, not lost.
	req, _ := http.NewRequest(http.MethodGet, s.ClientURL+"/?queued="+id, nil)
	req.AddCookie(&http.Cookie{Name: cookie.Name, Value: cookie.Value})
	page, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET the page: %v", err)
	}
	html, _ := io.ReadAll(page.Body)
	page.Body.Close()
	// (The lost note itself is always on the page, for the script.)
	if !strings.Contains(string(html), `<li data-id="`+id+`" data-state="queued"`) || strings.Contains(string(html), `data-state="lost"`) {
		t.Errorf("page with Redis cut: want the tech queued, not lost; got\n%s", html)
	}
	for _, c := range page.Cookies() {
		if c.Name == "queued" && (c.MaxAge < 0 || c.Value == "") {
			t.Errorf("page with Redis cut: the queued cookie was cleared (%+v), want it kept", c)
		}
	}

	redisProxy.Restore(t)
	s.Restart(t, "worker-server")
	testenv.Eventually(t, "the tech to be stored once Redis is back", func() bool {
		status, _ := get()
		return status == http.StatusOK
	})
}
