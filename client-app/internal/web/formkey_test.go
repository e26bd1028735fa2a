package web_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/techlist/client-app/internal/apiclient"
	"github.com/techlist/client-app/internal/web"
	"github.com/techlist/techlist"
)

var formKeyRE = regexp.MustCompile(`<input type="hidden" name="idempotency_key" value="([^"]*)">`)

// formKey returns the add form's idempotency key in body.
func formKey(t *testing.T, body string) string {
	t.Helper()
	m := formKeyRE.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("body: got no idempotency key field in\n%s", body)
	}
	return m[1]
}

func postForm(text, key string) *http.Request {
	req := httptest.NewRequest(http.MethodPost, "/techs", strings.NewReader(url.Values{"text": {text}, "idempotency_key": {key}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return req
}

var validKey = regexp.MustCompile(`^[A-Za-z0-9_-]{16,64}$`)

// Each rendered form carries a fresh random key.
func TestFormCarriesAFreshKey(t *testing.T) {
	h := newHandler(t, &fakeAPI{list: listOf(apiclient.CacheHit, true, nil)})
	seen := map[string]bool{}
	for range 3 {
		_, body := serve(t, h, httptest.NewRequest(http.MethodGet, "/", nil))
		key := formKey(t, body)
		if !validKey.MatchString(key) || seen[key] {
			t.Errorf("form key %q: want a fresh key of 16 to 64 base64url characters", key)
		}
		seen[key] = true
	}
}

// The form's key goes to the api-server with the text; a double click or a
// resubmit sends the same key again.
func TestCreateTechForwardsTheFormKey(t *testing.T) {
	api := &fakeAPI{createID: "0197a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"}
	h := newHandler(t, api)
	const key = "KEYKEYKEYKEYKEYKEYKEYKEY23"
	for range 2 {
		if rec, _ := serve(t, h, postForm("Go", key)); rec.Code != http.StatusSeeOther {
			t.Fatalf("status: got %d, want 303", rec.Code)
		}
	}
	if got := api.sentKeys(); len(got) != 2 || got[0] != key || got[1] != key {
		t.Errorf("keys sent: got %q, want %q twice", got, key)
	}
}

// A form shown again after an error keeps its key, so sending the same
// text again is a replay, never a second tech.
func TestCreateTechKeepsTheKeyWhenShownAgain(t *testing.T) {
	const key = "KEYKEYKEYKEYKEYKEYKEYKEY23"
	tests := []struct {
		name      string
		text      string
		createErr error
		status    int
		alert     string
	}{
		{"invalid text", "", nil, 400, ""},
		{"timed out", "Go", &apiclient.TransportError{Op: "create tech", Err: errors.New("context deadline exceeded")}, 503,
			"The API server did not say whether it received your tech, so it may or may not have been submitted. Sending it again is safe: it will not be stored twice"},
		{"reset after sending", "Go", &apiclient.TransportError{Op: "create tech", Err: errors.New("read: connection reset by peer")}, 503, "Sending it again is safe"},
		{"api-server unsure", "Go", &apiclient.APIError{Status: 503, Code: techlist.EOutcomeUnknown, Message: "may or may not"}, 503, "Sending it again is safe"},
		{"api-server refused", "Go", &apiclient.APIError{Status: 503, Code: techlist.EUnavailable, Message: "no worker is listening"}, 503, "not submitted"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api := &fakeAPI{createErr: tt.createErr}
			rec, body := serve(t, newHandler(t, api), postForm(tt.text, key))
			if rec.Code != tt.status {
				t.Errorf("status: got %d, want %d", rec.Code, tt.status)
			}
			if got := formKey(t, body); got != key {
				t.Errorf("form key: got %q, want the same %q", got, key)
			}
			mustContain(t, body, tt.alert)
		})
	}
}

// The key used for another text: the new text was not sent, and the form
// gets a new key so that pressing Add again sends it as a new tech.
func TestCreateTechKeyUsedForAnotherText(t *testing.T) {
	const key = "KEYKEYKEYKEYKEYKEYKEYKEY23"
	api := &fakeAPI{createErr: &apiclient.APIError{Status: 422, Code: techlist.EIdempotencyMismatch, Message: "used with another text"}}
	rec, body := serve(t, newHandler(t, api), postForm("Rust", key))
	if rec.Code != http.StatusUnprocessableEntity {
		t.Errorf("status: got %d, want 422", rec.Code)
	}
	if got := formKey(t, body); got == key || !validKey.MatchString(got) {
		t.Errorf("form key: got %q, want a new one", got)
	}
	mustContain(t, body, "your new text was not sent", `value="Rust"`)
}

// A form without a valid key (an old page, a hand-made POST) still
// submits, with a fresh key that the form shown again keeps.
func TestCreateTechWithoutAValidKey(t *testing.T) {
	for _, posted := range []string{"", "short", "has space and more than sixteen", strings.Repeat("k", 65), "ключключключключключ"} {
		api := &fakeAPI{createErr: &apiclient.TransportError{Op: "create tech", Err: errors.New("i/o timeout")}}
		_, body := serve(t, newHandler(t, api), postForm("Go", posted))
		sent := api.sentKeys()
		if len(sent) != 1 || !validKey.MatchString(sent[0]) || sent[0] == posted {
			t.Errorf("posted key %q: sent %q, want one fresh valid key", posted, sent)
			continue
		}
		if got := formKey(t, body); got != sent[0] {
			t.Errorf("posted key %q: form shown again with %q, want the key sent (%q)", posted, got, sent[0])
		}
	}
}

// A double click: the second send arrives while the first is in flight
// (409); it waits for the first one's answer and redirects like it.
func TestCreateTechWaitsForTheSendInFlight(t *testing.T) {
	const id = "0197a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"
	inFlight := &apiclient.APIError{Status: 409, Code: techlist.EConflict, Message: "still in progress"}
	api := &fakeAPI{createID: id, createErrs: []error{inFlight, inFlight}}
	rec, _ := serve(t, newHandler(t, api), postForm("Go", "KEYKEYKEYKEYKEYKEYKEYKEY23"))
	if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/?queued="+id {
		t.Errorf("got %d to %q, want 303 to the first send's id", rec.Code, rec.Header().Get("Location"))
	}
	if n := len(api.sentKeys()); n != 3 {
		t.Errorf("sends: got %d, want 3", n)
	}

	// Still in flight after SubmitWait: the page says so, and keeps the key.
	api = &fakeAPI{createErr: inFlight}
	h := newHandlerWith(t, api, web.Config{PageSize: pageSize, SubmitWait: 300 * time.Millisecond})
	rec, body := serve(t, h, postForm("Go", "KEYKEYKEYKEYKEYKEYKEYKEY23"))
	if rec.Code != http.StatusConflict {
		t.Errorf("status: got %d, want 409", rec.Code)
	}
	mustContain(t, body, "still being processed", "Sending it again is safe", `value="KEYKEYKEYKEYKEYKEYKEYKEY23"`)
}
