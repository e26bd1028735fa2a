package e2e

import (
	"encoding/json"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/techlist/techlist"
	"github.com/techlist/techlist/testenv"
)

// The add form's idempotency key, end to end: a double click, a resubmit
// or a reload of the POST stores one tech; a send whose outcome the
// client-app cannot know is reported as such, and the form keeps its key.

var formKeyField = regexp.MustCompile(`<input type="hidden" name="idempotency_key" value="([^"]*)">`)

// pageFormKey returns the add form's idempotency key in the page.
func pageFormKey(t *testing.T, page string) string {
	t.Helper()
	m := formKeyField.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("the page's add form has no idempotency key field")
	}
	return m[1]
}

// postForm POSTs the add form without following the redirect, and returns
// the status, the id of the /?queued= redirect (if any) and the page.
func postForm(t *testing.T, clientURL, text, key string) (int, string, string) {
	t.Helper()
	c := &http.Client{Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.PostForm(clientURL+"/techs", url.Values{"text": {text}, "idempotency_key": {key}})
	if err != nil {
		t.Errorf("POST the form: %v", err)
		return 0, "", ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	loc, _ := url.Parse(resp.Header.Get("Location"))
	return resp.StatusCode, loc.Query().Get("queued"), string(b)
}

// TestFormResendStoresOneTech: the same form sent twice at once (a double
// click) and once more afterwards (a resubmit, a reload of the POST) is
// one tech, with one id and one row.
func TestFormResendStoresOneTech(t *testing.T) {
	t.Parallel()
	s := startStack(t, nil)
	stored := watchStored(t, s)
	text := "sent three times " + testenv.Suffix()
	key := pageFormKey(t, getPage(t, s.ClientURL+"/"))

	ids := make([]string, 3)
	var wg sync.WaitGroup
	for i := range 2 {
		wg.Go(func() {
			code, id, _ := postForm(t, s.ClientURL, text, key)
			if code != http.StatusSeeOther {
				t.Errorf("double click, send %d: got %d, want 303", i+1, code)
			}
			ids[i] = id
		})
	}
	wg.Wait()
	code, id, _ := postForm(t, s.ClientURL, text, key)
	if code != http.StatusSeeOther {
		t.Errorf("resubmit: got %d, want 303", code)
	}
	ids[2] = id
	if !techlist.ValidID(ids[0]) || ids[1] != ids[0] || ids[2] != ids[0] {
		t.Fatalf("ids of the three sends: got %q, want one id three times", ids)
	}
	stored(ids[0])

	// Nothing else is on its way: every accepted tech is stored.
	testenv.Eventually(t, "the queue to be empty", func() bool {
		var st struct{ Waiting int64 }
		getJSON(t, s.APIURL+"/api/v1/stats", &st)
		return st.Waiting == 0
	})
	var list listBody
	getJSON(t, s.APIURL+"/api/v1/techs?limit=100", &list)
	n := 0
	for _, tech := range list.Data {
		if tech.Text == text {
			n++
		}
	}
	if n != 1 {
		t.Errorf("rows with the text: got %d, want 1 (list %+v)", n, list.Data)
	}

	// A form rendered fresh after the success gets a new key.
	if again := pageFormKey(t, getPage(t, s.ClientURL+"/?queued="+ids[0])); again == key {
		t.Errorf("the form after a success: got the same key %q, want a new one", key)
	}
}

// TestFormUnknownOutcome: an api-server that takes the POST and then never
// answers, or cuts the connection: the page says the outcome is unknown
// and that sending again is safe, keeps the text, and keeps the key.
func TestFormUnknownOutcome(t *testing.T) {
	t.Parallel()
	for name, misbehave := range map[string]func(w http.ResponseWriter, r *http.Request){
		"no answer": func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() },
		"reset after sending": func(w http.ResponseWriter, r *http.Request) {
			if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
				conn.Close()
			}
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var mu sync.Mutex
			var keys []string
			api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				switch {
				case r.Method == http.MethodPost:
					io.ReadAll(r.Body)
					mu.Lock()
					keys = append(keys, r.Header.Get("Idempotency-Key"))
					mu.Unlock()
					misbehave(w, r)
				case r.URL.Path == "/api/v1/techs":
					w.Header().Set("Content-Type", "application/json")
					io.WriteString(w, `{"data":[],"next_cursor":null,"cached":false}`)
				default:
					http.Error(w, `{"error":{"code":"unavailable","message":"not here"}}`, http.StatusServiceUnavailable)
				}
			}))
			defer api.Close()
			client := liveStartClient(t, map[string]string{"API_URL": api.URL, "API_TIMEOUT": "1s"})

			text := "was it sent? " + testenv.Suffix()
			key := pageFormKey(t, getPage(t, client+"/"))
			code, _, page := postForm(t, client, text, key)
			if code != http.StatusServiceUnavailable {
				t.Errorf("status: got %d, want 503", code)
			}
			for _, want := range []string{"may or may not have been submitted", "Sending it again is safe", `value="` + html.EscapeString(text) + `"`} {
				if !strings.Contains(page, want) {
					t.Errorf("page: want %q in it", want)
				}
			}
			if strings.Contains(page, "not submitted") {
				t.Error("page says the tech was not submitted, but that is not known")
			}
			if got := pageFormKey(t, page); got != key {
				t.Errorf("form key: got %q, want the same %q, so a resend is a replay", got, key)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(keys) == 0 || keys[0] != key {
				t.Errorf("Idempotency-Key at the api-server: got %q, want %q", keys, key)
			}
			if t.Failed() {
				b, _ := json.Marshal(keys)
				t.Logf("keys received: %s\npage:\n%s", b, page)
			}
		})
	}
}
