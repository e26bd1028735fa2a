package web_test

import (
	"context"
	"errors"
	"fmt"
	"html"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/techlist/client-app/internal/apiclient"
	"github.com/techlist/client-app/internal/web"
	"github.com/techlist/techlist"
	"github.com/techlist/techlist/testenv"
)

// The real client must keep satisfying the interface the pages declare.
var _ web.API = (*apiclient.Client)(nil)

// fakeAPI is a web.API answering what its fields say and recording calls.
type fakeAPI struct {
	mu         sync.Mutex
	list       apiclient.ListResult
	listErr    error
	createID   string
	createErr  error
	createErrs []error // returned by the first CreateTech calls, in order, before createErr
	healthErr  error
	health     func(ctx context.Context) error

	stats    apiclient.Stats
	statsErr error
	techs    map[string]apiclient.TechState
	techErrs map[string]error
	events   func(ctx context.Context) (*apiclient.EventStream, error)

	gotLimit  int
	gotCursor string
	created   []string
	keys      []string // the idempotency key of each CreateTech
	asked     []string // ids asked with Tech
}

func (f *fakeAPI) Tech(ctx context.Context, id string) (apiclient.TechState, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asked = append(f.asked, id)
	if err := f.techErrs[id]; err != nil {
		return apiclient.TechState{}, err
	}
	if st, ok := f.techs[id]; ok {
		return st, nil
	}
	return apiclient.TechState{}, &apiclient.APIError{Status: 404, Code: "not_found", Message: "no tech with that id"}
}

func (f *fakeAPI) Stats(ctx context.Context) (apiclient.Stats, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.stats, f.statsErr
}

func (f *fakeAPI) Events(ctx context.Context) (*apiclient.EventStream, error) {
	if f.events == nil {
		return nil, &apiclient.TransportError{Op: "events", Err: errors.New("connection refused")}
	}
	return f.events(ctx)
}

func (f *fakeAPI) ListTechs(ctx context.Context, limit int, cursor string) (apiclient.ListResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gotLimit, f.gotCursor = limit, cursor
	return f.list, f.listErr
}

func (f *fakeAPI) CreateTech(ctx context.Context, text, key string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.created = append(f.created, text)
	f.keys = append(f.keys, key)
	if len(f.createErrs) > 0 {
		err := f.createErrs[0]
		f.createErrs = f.createErrs[1:]
		return "", err
	}
	return f.createID, f.createErr
}

func (f *fakeAPI) sentKeys() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.keys...)
}

func (f *fakeAPI) Health(ctx context.Context) error {
	if f.health != nil {
		return f.health(ctx)
	}
	return f.healthErr
}

func (f *fakeAPI) createdTexts() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.created...)
}

const pageSize = 20

func newHandler(t *testing.T, api web.API) http.Handler {
	t.Helper()
	return newHandlerWith(t, api, web.Config{PageSize: pageSize})
}

func newHandlerWith(t *testing.T, api web.API, cfg web.Config) *web.Server {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	h, err := web.NewServer(logger, api, cfg)
	if err != nil {
		t.Fatalf("NewServer: %v", err)
	}
	return h
}

// serve sends req to h and returns the recorded answer and its body.
func serve(t *testing.T, h http.Handler, req *http.Request) (*httptest.ResponseRecorder, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec, rec.Body.String()
}

func postText(text string) *http.Request {
	req := httptest.NewRequest(http.MethodPost, "/techs", strings.NewReader(url.Values{"text": {text}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return req
}

func tech(id, text string, p techlist.Priority) techlist.Tech {
	created := time.Date(2025, 6, 7, 8, 9, 0, 0, time.UTC)
	return techlist.Tech{ID: id, Text: text, Priority: p, CreatedAt: created, SubmittedAt: created}
}

func listOf(status string, cached bool, next *string, techs ...techlist.Tech) apiclient.ListResult {
	return apiclient.ListResult{
		Page:        techlist.Page{Data: techs, NextCursor: next},
		Cached:      cached,
		CacheStatus: status,
	}
}

func mustContain(t *testing.T, body string, wants ...string) {
	t.Helper()
	for _, want := range wants {
		if !strings.Contains(body, want) {
			t.Errorf("body: got no %q in\n%s", want, body)
		}
	}
}

func mustNotContain(t *testing.T, body string, unwanted ...string) {
	t.Helper()
	for _, u := range unwanted {
		if strings.Contains(body, u) {
			t.Errorf("body: got %q, want it absent", u)
		}
	}
}

var fieldErrorRE = regexp.MustCompile(`(?s)<p id="text-error"[^>]*>(.*?)</p>`)

// fieldError returns the message shown beside the text field, if any.
func fieldError(body string) string {
	m := fieldErrorRE.FindStringSubmatch(body)
	if m == nil {
		return ""
	}
	return strings.TrimSpace(m[1])
}

var inputRE = regexp.MustCompile(`(?s)<input id="text"[^>]*>`)

// inputValue returns the value attribute of the text field, still escaped.
func inputValue(t *testing.T, body string) string {
	t.Helper()
	input := inputRE.FindString(body)
	if input == "" {
		t.Fatalf("body: got no text input in\n%s", body)
	}
	m := regexp.MustCompile(`value="([^"]*)"`).FindStringSubmatch(input)
	if m == nil {
		return ""
	}
	return m[1]
}

func TestIndexListsTechsEscaped(t *testing.T) {
	next := "c/2 &x"
	api := &fakeAPI{list: listOf(apiclient.CacheMiss, false, &next,
		tech("2", "<script>alert(1)</script>", techlist.PriorityHigh),
		tech("1", `Go "generics" & more`, techlist.PriorityLow),
	)}
	rec, body := serve(t, newHandler(t, api), httptest.NewRequest(http.MethodGet, "/", nil))

	if rec.Code != http.StatusOK {
		t.Fatalf("status: got %d, want 200", rec.Code)
	}
	if got := rec.Header().Get("Content-Type"); got != "text/html; charset=utf-8" {
		t.Errorf("Content-Type: got %q, want text/html; charset=utf-8", got)
	}
	mustNotContain(t, body, "<script>alert(1)</script>", "<script>", "style=", "onerror", "onclick")
	checkScripts(t, body)
	mustContain(t, body,
		"Tech Summary",
		`&lt;script&gt;alert(1)&lt;/script&gt;`,
		`Go &#34;generics&#34; &amp; more`,
		`<span data-count>2</span> shown`,
		`<span class="sr-only">Priority: </span>high</span>`, `<span class="sr-only">Priority: </span>low</span>`,
		`Submitted <time data-field="submitted" datetime="2025-06-07T08:09:00Z">7 Jun 2025, 08:09:00 UTC</time>`,
		`stored <time data-field="stored" datetime="2025-06-07T08:09:00Z" title="7 Jun 2025, 08:09:00 UTC">08:09:00</time> <span data-field="stored-after">(0.0 s later)</span>`,
		`name="text"`, `maxlength="200"`, `<label for="text"`,
		`href="/?cursor=c%2f2%20%26x"`, "More techs",
		`href="/"`,
		`<ul id="techs" role="list" aria-labelledby="list-heading" data-first-page="true"`,
	)
	if api.gotLimit != pageSize || api.gotCursor != "" {
		t.Errorf("ListTechs: got limit %d cursor %q, want %d and empty", api.gotLimit, api.gotCursor, pageSize)
	}
}

func TestIndexPassesCursorAndCounts(t *testing.T) {
	tests := []struct {
		name   string
		techs  []techlist.Tech
		target string
		want   string
	}{
		{"empty", nil, "/", "<span data-count>0</span> shown"},
		{"one", []techlist.Tech{tech("1", "Go", techlist.PriorityMedium)}, "/", "<span data-count>1</span> shown"},
		{"second page", []techlist.Tech{tech("1", "Go", techlist.PriorityMedium)}, "/?cursor=abc", `data-first-page="false"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api := &fakeAPI{list: listOf(apiclient.CacheHit, true, nil, tt.techs...)}
			rec, body := serve(t, newHandler(t, api), httptest.NewRequest(http.MethodGet, tt.target, nil))
			if rec.Code != http.StatusOK {
				t.Fatalf("status: got %d, want 200", rec.Code)
			}
			mustContain(t, body, tt.want)
			mustNotContain(t, body, "More techs")
			if want, _ := url.ParseQuery(strings.TrimPrefix(tt.target, "/?")); api.gotCursor != want.Get("cursor") {
				t.Errorf("cursor: got %q, want %q", api.gotCursor, want.Get("cursor"))
			}
		})
	}
}

func TestIndexLastRead(t *testing.T) {
	tests := []struct {
		status string
		cached bool
		want   []string
	}{
		{apiclient.CacheHit, true, []string{`id="last-read">Redis cache</dd>`, "&middot; HIT</dd>"}},
		{apiclient.CacheMiss, false, []string{`id="last-read">MySQL</dd>`, "&middot; MISS, then cached</dd>"}},
		{apiclient.CacheBypass, false, []string{`id="last-read">MySQL</dd>`, "&middot; BYPASS: Redis unreachable</dd>"}},
		{"", true, []string{`id="last-read">Redis cache</dd>`}},
		{"", false, []string{`id="last-read">MySQL</dd>`}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/%v", tt.status, tt.cached), func(t *testing.T) {
			api := &fakeAPI{list: listOf(tt.status, tt.cached, nil, tech("1", "Go", techlist.PriorityLow))}
			api.list.Elapsed = 1234 * time.Microsecond
			_, body := serve(t, newHandler(t, api), httptest.NewRequest(http.MethodGet, "/", nil))
			mustContain(t, body, tt.want...)
			mustContain(t, body, `in <span class="font-medium tabular-nums text-slate-800 dark:text-slate-200">1.2 ms</span>`)
		})
	}
}

func TestIndexQueuedNotice(t *testing.T) {
	api := &fakeAPI{list: listOf(apiclient.CacheHit, true, nil)}
	h := newHandler(t, api)

	id := v7(time.Now(), 1)
	api.techs = map[string]apiclient.TechState{id: {Pending: true}}
	_, body := serve(t, h, httptest.NewRequest(http.MethodGet, "/?queued="+id, nil))
	mustContain(t, body, "Queued: your tech is being analysed; it appears in the list once stored.", id)

	// Only a well-formed id is shown; anything else in the link is ignored.
	for _, bad := range []string{`<b>"x"</b>`, "not-an-id", "0197A1B2-C3D4-7E5F-8A9B-0C1D2E3F4A5B", id + "x", strings.Repeat("a", 300)} {
		_, body = serve(t, h, httptest.NewRequest(http.MethodGet, "/?queued="+url.QueryEscape(bad), nil))
		mustNotContain(t, body, "Queued:", "data-notice-for", html.EscapeString(bad))
	}

	_, body = serve(t, h, httptest.NewRequest(http.MethodGet, "/", nil))
	mustNotContain(t, body, "Queued:")
}

func TestIndexAPIFailures(t *testing.T) {
	tests := []struct {
		name       string
		err        error
		target     string
		wantStatus int
		want       string
	}{
		{"unreachable", &apiclient.TransportError{Op: "list techs", Err: errors.New("connection refused")}, "/", 503, "The API server is unreachable"},
		{"dependency down", &apiclient.APIError{Status: 503, Code: "unavailable", Message: "mysql is unreachable"}, "/", 503, "Mysql is unreachable"},
		{"internal error", &apiclient.APIError{Status: 500, Code: "internal", Message: "internal server error"}, "/", 503, "cannot load the list"},
		{"unreadable answer", errors.New("apiclient: list techs: decode answer: bad"), "/", 503, "unexpected answer"},
		{"bad cursor", &apiclient.APIError{Status: 400, Code: "invalid", Message: "cursor is not valid", Field: "cursor"}, "/?cursor=zzz", 400, "Cursor is not valid"},
		{"rate limited", &apiclient.APIError{Status: 429, Code: "rate_limited", Message: "slow down"}, "/", 429, "Too many requests"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api := &fakeAPI{listErr: tt.err}
			rec, body := serve(t, newHandler(t, api), httptest.NewRequest(http.MethodGet, tt.target, nil))
			if rec.Code != tt.wantStatus {
				t.Errorf("status: got %d, want %d", rec.Code, tt.wantStatus)
			}
			// The whole page, form included, with the message in an alert.
			mustContain(t, body, `role="alert"`, tt.want, "Tech Summary", `<form method="post" action="/techs">`)
			mustNotContain(t, body, "connection refused")
		})
	}
}

func TestIndexRejectsHugeCursor(t *testing.T) {
	api := &fakeAPI{}
	rec, body := serve(t, newHandler(t, api), httptest.NewRequest(http.MethodGet, "/?cursor="+strings.Repeat("a", 2000), nil))
	if rec.Code != http.StatusBadRequest {
		t.Errorf("status: got %d, want 400", rec.Code)
	}
	mustContain(t, body, "That page link is not valid")
}

func TestCreateTech(t *testing.T) {
	tooLong := strings.Repeat("a", techlist.MaxTextLength+1)
	tests := []struct {
		name       string
		text       string
		createErr  error
		wantStatus int
		wantField  string // message beside the field
		wantAlert  string // message below the form
		wantValue  string // the text kept in the box, as escaped in HTML
		wantSent   []string
	}{
		{
			name: "empty", text: "", wantStatus: 400,
			wantField: "Text is required", wantValue: "",
		},
		{
			name: "only spaces", text: "   ", wantStatus: 400,
			wantField: "Text is required", wantValue: "   ",
		},
		{
			name: "201 characters", text: tooLong, wantStatus: 400,
			wantField: "Text must be at most 200 characters (got 201)", wantValue: tooLong,
		},
		{
			name: "control character", text: "Go\x00lang", wantStatus: 400,
			wantField: "Text must not contain control characters", wantValue: "Go\ufffdlang",
		},
		{
			name: "api rejects", text: `<i>Go</i>`, wantStatus: 400,
			createErr: &apiclient.APIError{Status: 400, Code: "invalid", Message: "text is not allowed", Field: "text"},
			wantField: "Text is not allowed", wantValue: "&lt;i&gt;Go&lt;/i&gt;", wantSent: []string{"<i>Go</i>"},
		},
		{
			name: "rate limited", text: "Go", wantStatus: 429,
			createErr: &apiclient.APIError{Status: 429, Code: "rate_limited", Message: "rate limited"},
			wantAlert: "Too many submissions; wait a moment and try again", wantValue: "Go", wantSent: []string{"Go"},
		},
		{
			name: "api dependency down", text: "Go", wantStatus: 503,
			createErr: &apiclient.APIError{Status: 503, Code: "unavailable", Message: "redis is unreachable"},
			wantAlert: "Redis is unreachable", wantValue: "Go", wantSent: []string{"Go"},
		},
		{
			name: "api unreachable", text: " Go ", wantStatus: 503,
			createErr: &apiclient.TransportError{Op: "create tech", Err: &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}},
			wantAlert: "The API server is unreachable; your tech was not submitted", wantValue: " Go ", wantSent: []string{"Go"},
		},
		{
			name: "api timed out", text: "Go", wantStatus: 503,
			createErr: &apiclient.TransportError{Op: "create tech", Err: errors.New("context deadline exceeded (Client.Timeout exceeded while awaiting headers)")},
			wantAlert: "may or may not have been submitted. Sending it again is safe", wantValue: "Go", wantSent: []string{"Go"},
		},
		{
			name: "api unsure", text: "Go", wantStatus: 503,
			createErr: &apiclient.APIError{Status: 503, Code: "outcome_unknown", Message: "Redis did not confirm the submission"},
			wantAlert: "may or may not have been submitted. Sending it again is safe", wantValue: "Go", wantSent: []string{"Go"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api := &fakeAPI{createErr: tt.createErr, list: listOf(apiclient.CacheHit, true, nil, tech("1", "Redis", techlist.PriorityHigh))}
			rec, body := serve(t, newHandler(t, api), postText(tt.text))
			if rec.Code != tt.wantStatus {
				t.Errorf("status: got %d, want %d", rec.Code, tt.wantStatus)
			}
			if got := fieldError(body); !strings.HasPrefix(got, tt.wantField) || (tt.wantField == "") != (got == "") {
				t.Errorf("field error: got %q, want %q", got, tt.wantField)
			}
			if tt.wantField != "" {
				mustContain(t, body, `aria-invalid="true"`, `aria-describedby="text-error"`)
			}
			if tt.wantAlert != "" {
				mustContain(t, body, tt.wantAlert)
			}
			if got := inputValue(t, body); got != tt.wantValue {
				t.Errorf("text kept: got %q, want %q", got, tt.wantValue)
			}
			// The list is still shown below the form.
			mustContain(t, body, "Redis", "<span data-count>1</span> shown")
			if got := api.createdTexts(); strings.Join(got, "|") != strings.Join(tt.wantSent, "|") {
				t.Errorf("sent to the API: got %q, want %q", got, tt.wantSent)
			}
			mustNotContain(t, body, "connection refused", "not submitted; Sending")
			if tt.wantAlert != "" && strings.Contains(tt.wantAlert, "may or may not") {
				mustNotContain(t, body, "not submitted")
			}
		})
	}
}

func TestCreateTechRedirects(t *testing.T) {
	api := &fakeAPI{createID: "0197a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"}
	rec, _ := serve(t, newHandler(t, api), postText("  Tailwind CSS  "))
	if rec.Code != http.StatusSeeOther {
		t.Fatalf("status: got %d, want 303", rec.Code)
	}
	if got, want := rec.Header().Get("Location"), "/?queued=0197a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"; got != want {
		t.Errorf("Location: got %q, want %q", got, want)
	}
	if got := api.createdTexts(); len(got) != 1 || got[0] != "Tailwind CSS" {
		t.Errorf("sent to the API: got %q, want [Tailwind CSS] trimmed", got)
	}
}

func TestCreateTechBodyTooLarge(t *testing.T) {
	api := &fakeAPI{createID: "x"}
	rec, body := serve(t, newHandler(t, api), postText(strings.Repeat("a", 100<<10)))
	if rec.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("status: got %d, want 413", rec.Code)
	}
	mustContain(t, body, "Submission too large")
	if got := api.createdTexts(); len(got) != 0 {
		t.Errorf("sent to the API: got %d texts, want none", len(got))
	}
}

func TestCrossOriginProtection(t *testing.T) {
	tests := []struct {
		name       string
		header     map[string]string
		wantStatus int
	}{
		{"cross-site fetch metadata", map[string]string{"Sec-Fetch-Site": "cross-site"}, 403},
		{"same-site other origin", map[string]string{"Sec-Fetch-Site": "same-site"}, 403},
		{"foreign origin", map[string]string{"Origin": "https://evil.example"}, 403},
		{"same origin fetch metadata", map[string]string{"Sec-Fetch-Site": "same-origin", "Origin": "http://example.com"}, 303},
		{"same origin header", map[string]string{"Origin": "http://example.com"}, 303},
		{"no browser headers", nil, 303},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api := &fakeAPI{createID: "id1"}
			req := postText("Go") // httptest requests have Host example.com
			for k, v := range tt.header {
				req.Header.Set(k, v)
			}
			rec, body := serve(t, newHandler(t, api), req)
			if rec.Code != tt.wantStatus {
				t.Fatalf("status: got %d, want %d", rec.Code, tt.wantStatus)
			}
			if tt.wantStatus == http.StatusForbidden {
				mustContain(t, body, "Request refused")
				if got := api.createdTexts(); len(got) != 0 {
					t.Errorf("sent to the API: got %q, want nothing", got)
				}
			}
		})
	}
}

// Pages carry the user's queued texts and the form's idempotency key, so
// no cache keeps them; the static files, versioned by content, are cached.
func TestCacheControl(t *testing.T) {
	requests := map[string]struct {
		req  *http.Request
		want string
	}{
		"page":          {httptest.NewRequest(http.MethodGet, "/", nil), "no-store"},
		"queued page":   {httptest.NewRequest(http.MethodGet, "/?queued=01890a5d-ac96-774b-bcce-b302099a8057", nil), "no-store"},
		"refused form":  {postText(""), "no-store"},
		"redirect":      {postText("Go"), "no-store"},
		"about":         {httptest.NewRequest(http.MethodGet, "/about", nil), "no-store"},
		"not found":     {httptest.NewRequest(http.MethodGet, "/nope", nil), "no-store"},
		"wrong method":  {httptest.NewRequest(http.MethodDelete, "/", nil), "no-store"},
		"static css":    {httptest.NewRequest(http.MethodGet, "/static/app.css", nil), "public, max-age=31536000, immutable"},
		"static script": {httptest.NewRequest(http.MethodGet, "/static/app.js", nil), "public, max-age=31536000, immutable"},
	}
	for name, tt := range requests {
		t.Run(name, func(t *testing.T) {
			rec, _ := serve(t, newHandler(t, &fakeAPI{createID: "01890a5d-ac96-774b-bcce-b302099a8057"}), tt.req)
			if got := rec.Header().Get("Cache-Control"); got != tt.want {
				t.Errorf("Cache-Control: got %q, want %q (status %d)", got, tt.want, rec.Code)
			}
		})
	}
}

func TestSecurityHeaders(t *testing.T) {
	want := map[string]string{
		"Content-Security-Policy":      "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
		"X-Content-Type-Options":       "nosniff",
		"Referrer-Policy":              "same-origin",
		"X-Frame-Options":              "DENY",
		"Cross-Origin-Opener-Policy":   "same-origin",
		"Cross-Origin-Resource-Policy": "same-origin",
		"Permissions-Policy":           "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
	}
	cross := postText("Go")
	cross.Header.Set("Sec-Fetch-Site", "cross-site")
	requests := map[string]*http.Request{
		"page":      httptest.NewRequest(http.MethodGet, "/", nil),
		"post":      postText(""),
		"redirect":  postText("Go"),
		"csrf":      cross,
		"healthz":   httptest.NewRequest(http.MethodGet, "/healthz", nil),
		"readyz":    httptest.NewRequest(http.MethodGet, "/readyz", nil),
		"static":    httptest.NewRequest(http.MethodGet, "/static/app.css", nil),
		"script":    httptest.NewRequest(http.MethodGet, "/static/app.js", nil),
		"about":     httptest.NewRequest(http.MethodGet, "/about", nil),
		"events":    httptest.NewRequest(http.MethodGet, "/events", nil),
		"not found": httptest.NewRequest(http.MethodGet, "/nope", nil),
	}
	for name, req := range requests {
		t.Run(name, func(t *testing.T) {
			rec, _ := serve(t, newHandler(t, &fakeAPI{createID: "x"}), req)
			for k, v := range want {
				if got := rec.Header().Get(k); got != v {
					t.Errorf("%s: got %q, want %q", k, got, v)
				}
			}
		})
	}
}

func TestHealthAndReadiness(t *testing.T) {
	tests := []struct {
		name       string
		target     string
		health     func(context.Context) error
		wantStatus int
		want       string
	}{
		{"healthz", "/healthz", func(context.Context) error { return errors.New("down") }, 200, "ok"},
		{"ready", "/readyz", func(context.Context) error { return nil }, 200, "ok"},
		{"api-server down", "/readyz", func(context.Context) error {
			return &apiclient.TransportError{Op: "health", Err: errors.New("refused")}
		}, 503, "api-server unreachable"},
		{"api-server unhealthy", "/readyz", func(context.Context) error {
			return &apiclient.APIError{Status: 500, Code: "internal", Message: "x"}
		}, 503, "api-server answered 500"},
		{"check bounded", "/readyz", func(ctx context.Context) error {
			deadline, ok := ctx.Deadline()
			if !ok || time.Until(deadline) > 2*time.Second {
				return errors.New("no deadline of at most 2s")
			}
			return nil
		}, 200, "ok"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec, body := serve(t, newHandler(t, &fakeAPI{health: tt.health}), httptest.NewRequest(http.MethodGet, tt.target, nil))
			if rec.Code != tt.wantStatus {
				t.Errorf("status: got %d, want %d", rec.Code, tt.wantStatus)
			}
			if !strings.Contains(body, tt.want) {
				t.Errorf("body: got %q, want it to contain %q", body, tt.want)
			}
		})
	}
}

func TestStaticFiles(t *testing.T) {
	h := newHandler(t, &fakeAPI{})
	_, page := serve(t, h, httptest.NewRequest(http.MethodGet, "/", nil))
	m := regexp.MustCompile(`<link rel="stylesheet" href="(/static/app\.css\?v=[0-9a-f]+)">`).FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("page: got no versioned stylesheet link in\n%s", page)
	}
	rec, css := serve(t, h, httptest.NewRequest(http.MethodGet, m[1], nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET %s: got status %d, want 200", m[1], rec.Code)
	}
	if got := rec.Header().Get("Content-Type"); !strings.HasPrefix(got, "text/css") {
		t.Errorf("Content-Type: got %q, want text/css", got)
	}
	if got := rec.Header().Get("Cache-Control"); !strings.Contains(got, "max-age=31536000") {
		t.Errorf("Cache-Control: got %q, want a year", got)
	}
	if !strings.Contains(css, "tailwindcss") {
		t.Errorf("app.css: got %d bytes without the tailwind banner, want the built CSS", len(css))
	}

	for _, target := range []string{"/static/", "/static/nope.css", "/static/../main.go"} {
		rec, _ := serve(t, h, httptest.NewRequest(http.MethodGet, target, nil))
		// ServeMux redirects an unclean path to its clean form, which is a 404.
		if rec.Code != http.StatusNotFound && rec.Code != http.StatusTemporaryRedirect {
			t.Errorf("GET %s: got status %d, want 404 (or a redirect to a clean path)", target, rec.Code)
		}
	}
}

func TestNotFoundAndMethods(t *testing.T) {
	tests := []struct {
		method, target string
		wantStatus     int
		wantAllow      string
	}{
		{http.MethodGet, "/nope", 404, ""},
		{http.MethodPost, "/nope", 404, ""},
		{http.MethodGet, "/index.html", 404, ""},
		{http.MethodDelete, "/", 405, "GET, HEAD"},
		{http.MethodPut, "/techs", 405, "GET, HEAD, POST"},
		{http.MethodPost, "/about", 405, "GET, HEAD"},
		{http.MethodPost, "/events", 405, "GET, HEAD"},
		{http.MethodGet, "/techs", 303, ""},
		{http.MethodHead, "/", 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.target, func(t *testing.T) {
			rec, body := serve(t, newHandler(t, &fakeAPI{}), httptest.NewRequest(tt.method, tt.target, nil))
			if rec.Code != tt.wantStatus {
				t.Errorf("status: got %d, want %d", rec.Code, tt.wantStatus)
			}
			if got := rec.Header().Get("Allow"); got != tt.wantAllow {
				t.Errorf("Allow: got %q, want %q", got, tt.wantAllow)
			}
			if tt.wantStatus >= 400 {
				mustContain(t, body, "<!doctype html>", "Back to the Tech Summary")
			}
		})
	}
}

// TestThroughRealClient checks the pages against the real apiclient and a
// fake api-server, including one that is not there at all.
func TestThroughRealClient(t *testing.T) {
	apiSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Cache", "BYPASS")
		io.WriteString(w, `{"data":[{"id":"1","text":"MySQL","priority":"medium","created_at":"2025-01-02T03:04:05Z"}],"next_cursor":null,"cached":false}`)
	}))
	t.Cleanup(apiSrv.Close)

	deadAddr := "127.0.0.1:" + strconv.Itoa(testenv.FreePort(t)) // nothing listens there

	tests := []struct {
		name       string
		base       string
		wantStatus int
		want       string
	}{
		{"up", apiSrv.URL, 200, "BYPASS: Redis unreachable"},
		{"down", "http://" + deadAddr, 503, "The API server is unreachable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, _ := url.Parse(tt.base)
			api := apiclient.New(u, &http.Client{Timeout: 2 * time.Second})
			rec, body := serve(t, newHandler(t, api), httptest.NewRequest(http.MethodGet, "/", nil))
			if rec.Code != tt.wantStatus {
				t.Errorf("status: got %d, want %d", rec.Code, tt.wantStatus)
			}
			mustContain(t, body, tt.want)
		})
	}
}

// TestRequestLogLine checks the one log line per request: the caller's
// X-Request-Id answered and named, and the route the mux matched.
func TestRequestLogLine(t *testing.T) {
	var buf syncBuffer
	h, err := web.NewServer(slog.New(slog.NewTextHandler(&buf, nil)), &fakeAPI{}, web.Config{PageSize: pageSize})
	if err != nil {
		t.Fatalf("NewServer: %v", err)
	}
	req := httptest.NewRequest(http.MethodGet, "/about", nil)
	req.Header.Set("X-Request-Id", "trace-42")
	rec, _ := serve(t, h, req)
	if got := rec.Header().Get("X-Request-Id"); got != "trace-42" {
		t.Errorf("X-Request-Id: got %q, want trace-42", got)
	}
	mustContain(t, buf.String(), "msg=request", "method=GET", "path=/about", `route="GET /about"`,
		"status=200", "bytes=", "duration_ms=", "request_id=trace-42")
}

// syncBuffer is a strings.Builder safe for the handler's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
