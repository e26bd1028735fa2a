package web_test

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/techlist/client-app/internal/apiclient"
	"github.com/techlist/client-app/internal/web"
	"github.com/techlist/techlist"
)

// Ids as the api-server makes them: UUIDv7, whose first 48 bits are the
// Unix milliseconds of the submission.
func v7(at time.Time, n int) string {
	ms := at.UnixMilli()
	h := fmt.Sprintf("%012x", ms)
	return fmt.Sprintf("%s-%s-7000-8000-%012d", h[:8], h[8:], n)
}

var scriptRE = regexp.MustCompile(`(?s)<script\b([^>]*)>(.*?)</script>`)

// checkScripts checks that the page's only scripts are the external file,
// with nothing inline.
func checkScripts(t *testing.T, body string) {
	t.Helper()
	scripts := scriptRE.FindAllStringSubmatch(body, -1)
	if len(scripts) != 1 {
		t.Fatalf("scripts: got %d, want the one external app.js", len(scripts))
	}
	if !regexp.MustCompile(`^ src="/static/app\.js\?v=[0-9a-f]+" defer$`).MatchString(scripts[0][1]) || scripts[0][2] != "" {
		t.Errorf("script: got <script%s>%s</script>, want only the external app.js", scripts[0][1], scripts[0][2])
	}
}

// queuedCookie returns the cookie the client-app keeps of submissions.
func queuedCookie(t *testing.T, subs ...[2]string) *http.Cookie {
	t.Helper()
	type sub struct {
		ID   string `json:"id"`
		Text string `json:"text"`
	}
	var list []sub
	for _, s := range subs {
		list = append(list, sub{s[0], s[1]})
	}
	b, err := json.Marshal(list)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Cookie{Name: "queued", Value: base64.RawURLEncoding.EncodeToString(b)}
}

// decodeQueued decodes a Set-Cookie of the queued cookie; nil when deleted.
func decodeQueued(t *testing.T, rec *httptest.ResponseRecorder) (ids []string, set bool) {
	t.Helper()
	return decodeQueuedCookies(t, rec.Result().Cookies())
}

func decodeQueuedCookies(t *testing.T, cookies []*http.Cookie) (ids []string, set bool) {
	t.Helper()
	for _, c := range cookies {
		if c.Name != "queued" {
			continue
		}
		if !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" {
			t.Errorf("queued cookie: got %+v, want HttpOnly, SameSite=Lax, Path=/", c)
		}
		if c.MaxAge < 0 {
			return nil, true
		}
		raw, err := base64.RawURLEncoding.DecodeString(c.Value)
		if err != nil {
			t.Fatalf("queued cookie: %v", err)
		}
		var subs []struct{ ID, Text string }
		if err := json.Unmarshal(raw, &subs); err != nil {
			t.Fatalf("queued cookie: %v", err)
		}
		for _, s := range subs {
			ids = append(ids, s.ID)
		}
		return ids, true
	}
	return nil, false
}

func TestCreateTechRemembersTheSubmission(t *testing.T) {
	now := time.Now()
	id := v7(now, 1)
	api := &fakeAPI{createID: id}
	h := newHandler(t, api)

	rec, _ := serve(t, h, postText("  Tailwind <CSS>  "))
	if rec.Code != http.StatusSeeOther {
		t.Fatalf("status: got %d, want 303", rec.Code)
	}
	ids, set := decodeQueued(t, rec)
	if !set || len(ids) != 1 || ids[0] != id {
		t.Fatalf("queued cookie: got %q (set %v), want [%s]", ids, set, id)
	}

	// The page the redirect leads to shows it at once, queued, text and all.
	api.techs = map[string]apiclient.TechState{id: {Pending: true}}
	req := httptest.NewRequest(http.MethodGet, rec.Header().Get("Location"), nil)
	for _, c := range rec.Result().Cookies() {
		req.AddCookie(c)
	}
	rec, body := serve(t, h, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("status: got %d, want 200", rec.Code)
	}
	item := itemHTML(t, body, id)
	for _, want := range []string{
		`data-state="queued"`, `data-late-in="`, "data-own",
		`>Tailwind &lt;CSS&gt;</p>`,
		`>queued</span>`,
		"Queued: a worker is analysing it.",
	} {
		if !strings.Contains(item, want) {
			t.Errorf("queued item: got no %q in\n%s", want, item)
		}
	}
	mustContain(t, body, "Queued: your tech is being analysed; it appears in the list once stored.")
	// Its fate is asked for on the event stream.
	mustContain(t, body, `data-events="/events?after=&amp;queued=`+id+`"`)
	if _, set := decodeQueued(t, rec); set {
		t.Error("queued cookie rewritten though nothing changed")
	}
}

// itemHTML returns the <li> of id in body.
func itemHTML(t *testing.T, body, id string) string {
	t.Helper()
	m := regexp.MustCompile(`(?s)<li data-id="` + regexp.QuoteMeta(id) + `".*?</li>`).FindString(body)
	if m == "" {
		t.Fatalf("no item %s in\n%s", id, body)
	}
	return m
}

func TestIndexShowsWhatBecameOfSubmissions(t *testing.T) {
	now := time.Date(2026, 2, 3, 4, 5, 6, 0, time.UTC)
	queued, late, stored, listed, lost, gone := v7(now.Add(-time.Second), 1), v7(now.Add(-time.Minute), 2),
		v7(now.Add(-2*time.Second), 3), v7(now.Add(-3*time.Second), 4), v7(now.Add(-4*time.Second), 5), v7(now.Add(-5*time.Second), 6)
	storedTech := techlist.Tech{ID: stored, Text: "Stored one", Priority: techlist.PriorityHigh,
		SubmittedAt: now.Add(-2 * time.Second), CreatedAt: now.Add(-1500 * time.Millisecond)}
	listedTech := techlist.Tech{ID: listed, Text: "Listed one", Priority: techlist.PriorityLow,
		SubmittedAt: now.Add(-3 * time.Second), CreatedAt: now.Add(-2 * time.Second)}
	api := &fakeAPI{
		list: listOf(apiclient.CacheHit, true, nil, listedTech),
		techs: map[string]apiclient.TechState{
			queued: {Pending: true}, late: {Pending: true},
			stored: {Tech: storedTech}, listed: {Tech: listedTech},
		},
	}
	h := newHandlerWith(t, api, web.Config{PageSize: pageSize, QueuedTimeout: 30 * time.Second, Now: func() time.Time { return now }})
	req := httptest.NewRequest(http.MethodGet, "/?queued="+lost, nil)
	req.AddCookie(queuedCookie(t, [2]string{lost, "Lost one"}, [2]string{queued, "Queued one"}, [2]string{late, "Late one"},
		[2]string{stored, "Stored one"}, [2]string{listed, "Listed one"}, [2]string{gone, "Gone one"}))
	rec, body := serve(t, h, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("status: got %d, want 200", rec.Code)
	}

	checks := map[string][]string{
		queued: {`data-state="queued"`, `data-late-in="29000"`, ">queued</span>", "Queued one"},
		late:   {`data-state="late"`, ">not stored yet</span>", "Not stored after 30 seconds."},
		stored: {`data-state="stored"`, "data-own", "Priority: </span>high", "(0.5 s later)"},
		listed: {`data-state="stored"`, "Priority: </span>low", "(1.0 s later)"},
		lost:   {`data-state="lost"`, ">not stored</span>", "Not stored: the API server no longer knows this tech"},
	}
	for id, wants := range checks {
		item := itemHTML(t, body, id)
		for _, want := range wants {
			if !strings.Contains(item, want) {
				t.Errorf("item %s: got no %q in\n%s", id, want, item)
			}
		}
	}
	if strings.Contains(body, gone) || strings.Contains(body, "Gone one") {
		t.Error("a forgotten submission that is not the one just made: got it shown, want it dropped")
	}
	if n := strings.Count(body, `data-id="`+listed+`"`); n != 1 {
		t.Errorf("the listed tech: shown %d times, want once", n)
	}
	// Queued first (newest first), then the stored ones.
	order := regexp.MustCompile(`<li data-id="([^"]+)"`).FindAllStringSubmatch(body, -1)
	var got []string
	for _, m := range order {
		got = append(got, m[1])
	}
	if want := []string{lost, queued, late, stored, listed}; strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("order: got %q, want %q", got, want)
	}
	mustContain(t, body, "<span data-count>2</span> shown",
		`<div role="status" data-notice-for="`+lost+`"`, "Not stored: see the note beside your tech.")

	// Only what is still waiting is remembered.
	ids, set := decodeQueued(t, rec)
	if !set || strings.Join(ids, ",") != queued+","+late {
		t.Errorf("queued cookie: got %q, want [%s %s]", ids, queued, late)
	}
}

// A later page shows no submissions and leaves the cookie alone.
func TestSecondPageLeavesSubmissionsAlone(t *testing.T) {
	id := v7(time.Now(), 1)
	api := &fakeAPI{list: listOf(apiclient.CacheHit, true, nil, tech("a", "Go", techlist.PriorityLow))}
	req := httptest.NewRequest(http.MethodGet, "/?cursor=abc", nil)
	req.AddCookie(queuedCookie(t, [2]string{id, "Mine"}))
	rec, body := serve(t, newHandler(t, api), req)
	mustNotContain(t, body, "Mine")
	mustContain(t, body, `data-events="/events"`, `data-first-page="false"`)
	if _, set := decodeQueued(t, rec); set {
		t.Error("queued cookie: got it rewritten on a later page")
	}
	if len(api.asked) != 0 {
		t.Errorf("asked the API about %q, want nothing", api.asked)
	}
}

func TestQueuedCookieIsBoundedAndChecked(t *testing.T) {
	api := &fakeAPI{}
	h := newHandler(t, api)
	var cookies []*http.Cookie
	long := strings.Repeat("é", 200) // 400 bytes
	for i := range 8 {
		api.createID = v7(time.Now(), i)
		req := postText(long)
		for _, c := range cookies {
			req.AddCookie(c)
		}
		rec, _ := serve(t, h, req)
		cookies = rec.Result().Cookies()
		if len(cookies) != 1 {
			t.Fatalf("submission %d: got %d cookies, want 1", i, len(cookies))
		}
		if n := len(cookies[0].Value); n > 3000 {
			t.Errorf("submission %d: cookie of %d bytes, want at most 3000", i, n)
		}
	}
	ids, _ := decodeQueuedCookies(t, cookies)
	if len(ids) == 0 || len(ids) > 5 || ids[0] != api.createID {
		t.Errorf("remembered: got %d ids starting %q, want 1 to 5, the newest first", len(ids), ids)
	}

	// Anything malformed in the cookie is ignored, never shown.
	for _, value := range []string{"%%%", base64.RawURLEncoding.EncodeToString([]byte(`{"id":1}`)),
		base64.RawURLEncoding.EncodeToString([]byte(`[{"id":"../../x","text":"<b>x</b>"},{"id":"` + v7(time.Now(), 9) + `","text":"a\u0000b"}]`))} {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.AddCookie(&http.Cookie{Name: "queued", Value: value})
		rec, body := serve(t, h, req)
		if rec.Code != http.StatusOK {
			t.Errorf("cookie %q: status %d, want 200", value, rec.Code)
		}
		mustNotContain(t, body, ` data-own class=`, "../../x")
	}
}

func TestStatusStrip(t *testing.T) {
	waiting, total, ratio := int64(3), int64(12345), 0.934
	api := &fakeAPI{
		list: listOf(apiclient.CacheHit, true, nil),
		stats: apiclient.Stats{QueueMode: "pubsub", Waiting: &waiting, Total: &total,
			Cache: apiclient.CacheStats{Hits: 934, Misses: 60, Bypasses: 6, HitRatio: &ratio}},
	}
	_, body := serve(t, newHandler(t, api), httptest.NewRequest(http.MethodGet, "/", nil))
	mustContain(t, body,
		`data-stat="hit_ratio">93 %</dd>`,
		`data-stat="reads">934 hits in 1,000 list reads since the API server started; 6 with Redis unreachable</dd>`,
		`data-stat="queue_mode">pub/sub</dd>`,
		`data-stat="waiting">3</dd>`,
		`<span data-stat="total">12,345</span> stored`,
		`data-live-status role="status">Off. Refresh the page to see new techs.</span>`,
	)

	api.statsErr = &apiclient.TransportError{Op: "stats", Err: errors.New("refused")}
	_, body = serve(t, newHandler(t, api), httptest.NewRequest(http.MethodGet, "/", nil))
	mustContain(t, body, `data-stat="hit_ratio">–</dd>`, `data-stat="waiting">–</dd>`, `<p id="list-count" class="text-sm text-slate-600 dark:text-slate-400"><span data-count>0</span> shown</p>`)
	mustNotContain(t, body, "– stored")
}

func TestAboutPage(t *testing.T) {
	waiting, total := int64(0), int64(7)
	api := &fakeAPI{stats: apiclient.Stats{QueueMode: "streams", Waiting: &waiting, Total: &total}}
	h := newHandler(t, api)
	rec, body := serve(t, h, httptest.NewRequest(http.MethodGet, "/about", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("status: got %d, want 200", rec.Code)
	}
	checkScripts(t, body)
	mustContain(t, body,
		"<title>How it works · Tech Summary</title>",
		`<a href="/about" aria-current="page"`,
		`<img src="/static/data-flow.svg?v=`, `alt="Data flow.`,
		"Live updates (after W9)",
		`data-stat="total">7</dd>`, `data-stat="queue_mode">streams</dd>`,
		`data-events="/events"`,
	)
	m := regexp.MustCompile(`<img src="(/static/data-flow\.svg\?v=[0-9a-f]+)"`).FindStringSubmatch(body)
	if m == nil {
		t.Fatal("no diagram")
	}
	rec, svg := serve(t, h, httptest.NewRequest(http.MethodGet, m[1], nil))
	if rec.Code != http.StatusOK || !strings.HasPrefix(rec.Header().Get("Content-Type"), "image/svg+xml") || !strings.Contains(svg, "techlist: data flow") {
		t.Errorf("diagram: got %d %q, want the SVG", rec.Code, rec.Header().Get("Content-Type"))
	}
	// The API being down still leaves the page, with unknown numbers.
	api.statsErr = &apiclient.TransportError{Op: "stats", Err: errors.New("refused")}
	rec, body = serve(t, h, httptest.NewRequest(http.MethodGet, "/about", nil))
	if rec.Code != http.StatusOK {
		t.Errorf("API down: status %d, want 200", rec.Code)
	}
	mustContain(t, body, `data-stat="total">–</dd>`, "The API server did not answer.")
}

// ---- the event stream

// upstream is the api-server's event stream as the test writes it.
type upstream struct {
	w *io.PipeWriter
}

func (u *upstream) event(t *testing.T, data string) {
	t.Helper()
	if _, err := io.WriteString(u.w, "event: tech.created\ndata: "+data+"\n\n"); err != nil {
		t.Fatalf("write upstream: %v", err)
	}
}

func techEvent(t *testing.T, tech techlist.Tech) string {
	t.Helper()
	b, err := json.Marshal(techlist.Event{Type: techlist.EventTechCreated, Tech: tech})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// sse is a browser reading the client-app's /events.
type sse struct {
	t      *testing.T
	events chan [3]string // event, id, data
	done   chan struct{}
}

func openSSE(t *testing.T, srv *httptest.Server, target string) (*sse, *http.Response) {
	t.Helper()
	resp, err := srv.Client().Get(srv.URL + target)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	s := &sse{t: t, events: make(chan [3]string, 100), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		sc := bufio.NewScanner(resp.Body)
		var ev [3]string
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if ev != ([3]string{}) {
					s.events <- ev
				}
				ev = [3]string{}
			case strings.HasPrefix(line, "event: "):
				ev[0] = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "id: "):
				ev[1] = strings.TrimPrefix(line, "id: ")
			case strings.HasPrefix(line, "data: "):
				ev[2] = strings.TrimPrefix(line, "data: ")
			case strings.HasPrefix(line, ":"):
				s.events <- [3]string{"comment", "", line}
			case strings.HasPrefix(line, "retry: "):
				s.events <- [3]string{"retry", "", strings.TrimPrefix(line, "retry: ")}
			}
		}
	}()
	return s, resp
}

// next returns the next event named name, skipping others.
func (s *sse) next(name string) (id, data string) {
	s.t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case ev := <-s.events:
			if ev[0] == name {
				return ev[1], ev[2]
			}
		case <-s.done:
			for {
				select {
				case ev := <-s.events:
					if ev[0] == name {
						return ev[1], ev[2]
					}
					continue
				default:
				}
				break
			}
			s.t.Fatalf("stream ended before a %q event", name)
		case <-timeout:
			s.t.Fatalf("no %q event within 5s", name)
		}
	}
}

func (s *sse) ended() bool {
	select {
	case <-s.done:
		return true
	case <-time.After(5 * time.Second):
		return false
	}
}

func TestEventsRelaysAndCatchesUp(t *testing.T) {
	now := time.Date(2026, 2, 3, 4, 5, 6, 0, time.UTC)
	newest, older, caught := v7(now.Add(-time.Minute), 1), v7(now.Add(-2*time.Minute), 2), v7(now.Add(-10*time.Second), 3)
	queuedStored, queuedLost, queuedWaiting := v7(now.Add(-5*time.Second), 4), v7(now.Add(-6*time.Second), 5), v7(now.Add(-7*time.Second), 6)
	mk := func(id, text string, p techlist.Priority) techlist.Tech {
		at, _ := time.Parse(time.RFC3339, "2026-02-03T04:05:00Z")
		return techlist.Tech{ID: id, Text: text, Priority: p, SubmittedAt: at, CreatedAt: at.Add(250 * time.Millisecond)}
	}
	pr, pw := io.Pipe()
	t.Cleanup(func() { pw.Close() })
	waiting, total := int64(1), int64(3)
	api := &fakeAPI{
		// The first page now: one stored since the page was read.
		list: listOf(apiclient.CacheHit, true, nil, mk(caught, "Caught up", techlist.PriorityLow), mk(newest, "Newest", techlist.PriorityHigh), mk(older, "Older", techlist.PriorityLow)),
		techs: map[string]apiclient.TechState{
			queuedStored:  {Tech: mk(queuedStored, "Mine, stored", techlist.PriorityMedium)},
			queuedWaiting: {Pending: true},
		},
		stats: apiclient.Stats{QueueMode: "pubsub", Waiting: &waiting, Total: &total, Live: true},
		events: func(ctx context.Context) (*apiclient.EventStream, error) {
			return apiclient.NewEventStream(pr, 0), nil
		},
	}
	h := newHandlerWith(t, api, web.Config{PageSize: pageSize, Heartbeat: 50 * time.Millisecond, StatsInterval: time.Hour})
	defer h.CloseStreams()
	srv := httptest.NewServer(h)
	defer srv.Close()

	s, resp := openSSE(t, srv, "/events?after="+newest+"&queued="+queuedStored+"&queued="+queuedLost+"&queued="+queuedWaiting+"&queued=nonsense")
	for k, want := range map[string]string{"Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache, no-transform", "X-Accel-Buffering": "no"} {
		if got := resp.Header.Get(k); got != want {
			t.Errorf("%s: got %q, want %q", k, got, want)
		}
	}
	if got := resp.Header.Get("Content-Security-Policy"); got == "" {
		t.Error("Content-Security-Policy: missing on the stream")
	}
	if _, retry := s.next("retry"); retry != "3000" {
		t.Errorf("retry: got %q, want 3000", retry)
	}
	if _, data := s.next("status"); data != `{"live":true,"message":"On: new techs appear as they are stored."}` {
		t.Errorf("status: got %s", data)
	}
	// Catch-up: what was stored after the page's newest, then the fate of
	// the queued ones.
	id, data := s.next("tech")
	if id != caught || !strings.Contains(data, `"text":"Caught up"`) {
		t.Errorf("catch-up: got %s %s, want %s", id, data, caught)
	}
	id, data = s.next("tech")
	if id != queuedStored || !strings.Contains(data, `"badge":"medium"`) || !strings.Contains(data, `"state":"stored"`) {
		t.Errorf("queued and stored: got %s %s", id, data)
	}
	if _, data := s.next("lost"); data != `{"id":"`+queuedLost+`"}` {
		t.Errorf("lost: got %s", data)
	}
	if _, data := s.next("stats"); data != `{"queue_mode":"pub/sub","waiting":"1","total":"3","hit_ratio":"–","reads":"0 hits in 0 list reads since the API server started"}` {
		t.Errorf("stats: got %s", data)
	}

	// Relayed live, escaped for HTML by the JSON encoding, as the view the
	// page fills in.
	u := &upstream{w: pw}
	live := mk(v7(now, 7), `<script>alert("x")</script>`, techlist.PriorityHigh)
	u.event(t, `{"type":"tech.created","tech":{"id":"bad"}}`) // skipped
	u.event(t, techEvent(t, live))
	id, data = s.next("tech")
	if id != live.ID {
		t.Errorf("live: got id %s, want %s", id, live.ID)
	}
	want := `{"id":"` + live.ID + `","text":"\u003cscript\u003ealert(\"x\")\u003c/script\u003e","state":"stored","badge":"high",` +
		`"submitted_at":"2026-02-03T04:05:00Z","submitted":"3 Feb 2026, 04:05:00 UTC","stored_at":"2026-02-03T04:05:00.25Z",` +
		`"stored":"3 Feb 2026, 04:05:00 UTC","stored_short":"04:05:00","stored_after":"0.2 s later","note":""}`
	if data != want {
		t.Errorf("live data:\ngot  %s\nwant %s", data, want)
	}
	// The numbers are read again soon after a store.
	s.next("stats")
	s.next("comment") // heartbeats while idle

	// The api-server's stream ending ends this one, saying so; the
	// browser reconnects.
	pw.Close()
	if _, data := s.next("status"); data != `{"live":false,"message":"Interrupted: reconnecting…"}` {
		t.Errorf("status after the upstream ended: got %s", data)
	}
	if !s.ended() {
		t.Error("stream still open after the upstream ended")
	}
}

func TestEventsWhenTheAPIIsDown(t *testing.T) {
	api := &fakeAPI{statsErr: &apiclient.TransportError{Op: "stats", Err: errors.New("refused")}}
	srv := httptest.NewServer(newHandler(t, api))
	defer srv.Close()
	s, resp := openSSE(t, srv, "/events?after=")
	if resp.StatusCode != http.StatusOK {
		t.Errorf("status: got %d, want 200, so the browser retries", resp.StatusCode)
	}
	if _, data := s.next("stats"); !strings.Contains(data, `"total":"–"`) {
		t.Errorf("stats: got %s, want unknown numbers", data)
	}
	if _, data := s.next("status"); !strings.Contains(data, `"live":false`) || !strings.Contains(data, "the API server is unreachable") {
		t.Errorf("status: got %s", data)
	}
	if !s.ended() {
		t.Error("stream still open, want it closed so the browser retries")
	}
}

// An api-server that has lost its subscription to the events (Redis down)
// answers, but relays nothing: the page says so, and says when it is back.
func TestEventsSaysWhenTheAPIRelaysNothing(t *testing.T) {
	pr, pw := io.Pipe()
	api := &fakeAPI{
		stats: apiclient.Stats{QueueMode: "pubsub", Live: false},
		events: func(ctx context.Context) (*apiclient.EventStream, error) {
			return apiclient.NewEventStream(pr, 0), nil
		},
	}
	srv := httptest.NewServer(newHandlerWith(t, api, web.Config{PageSize: pageSize, StatsInterval: 50 * time.Millisecond}))
	defer srv.Close()
	defer pw.Close() // first: it ends the stream, which Close would wait for
	s, _ := openSSE(t, srv, "/events")
	if _, data := s.next("status"); !strings.Contains(data, `"live":true`) {
		t.Errorf("first status: got %s, want live", data)
	}
	if _, data := s.next("status"); !strings.Contains(data, `"live":false`) || !strings.Contains(data, "not receiving the worker's events") {
		t.Errorf("status with the api-server not subscribed: got %s", data)
	}
	api.mu.Lock()
	api.stats.Live = true
	api.mu.Unlock()
	if _, data := s.next("status"); !strings.Contains(data, `"live":true`) {
		t.Errorf("status once it is back: got %s", data)
	}
}

// Shutting the server down ends open streams at once.
func TestEventsEndOnShutdown(t *testing.T) {
	pr, pw := io.Pipe()
	defer pw.Close()
	api := &fakeAPI{events: func(ctx context.Context) (*apiclient.EventStream, error) {
		return apiclient.NewEventStream(pr, 0), nil
	}}
	h := newHandlerWith(t, api, web.Config{PageSize: pageSize})
	srv := httptest.NewServer(h)
	defer srv.Close()
	s, _ := openSSE(t, srv, "/events")
	s.next("status")
	h.CloseStreams()
	if !s.ended() {
		t.Error("stream still open 5s after the server began shutting down")
	}
}

// A queued tech the api-server cannot tell about (503 unavailable: it
// cannot read the pending mark; or no answer at all) is still queued: the
// page shows it queued, the cookie keeps it, and the page's stream sends
// no "lost" for it. Only a 404 means lost.
func TestQueuedTechStaysQueuedWhileTheAPICannotTell(t *testing.T) {
	now := time.Date(2026, 2, 3, 4, 5, 6, 0, time.UTC)
	unavailable, unreachable := v7(now.Add(-time.Second), 1), v7(now.Add(-2*time.Second), 2)
	pr, pw := io.Pipe()
	t.Cleanup(func() { pw.Close() })
	api := &fakeAPI{
		list: listOf(apiclient.CacheBypass, true, nil),
		techErrs: map[string]error{
			unavailable: &apiclient.APIError{Status: http.StatusServiceUnavailable, Code: techlist.EUnavailable, Message: "cannot tell"},
			unreachable: &apiclient.TransportError{Op: "get tech", Err: errors.New("connection refused")},
		},
		stats: apiclient.Stats{QueueMode: "pubsub", Live: true},
		events: func(ctx context.Context) (*apiclient.EventStream, error) {
			return apiclient.NewEventStream(pr, 0), nil
		},
	}
	h := newHandlerWith(t, api, web.Config{PageSize: pageSize, QueuedTimeout: 30 * time.Second, StatsInterval: time.Hour, Now: func() time.Time { return now }})
	defer h.CloseStreams()

	for _, id := range []string{unavailable, unreachable} {
		req := httptest.NewRequest(http.MethodGet, "/?queued="+id, nil)
		req.AddCookie(queuedCookie(t, [2]string{unavailable, "Mine, 503"}, [2]string{unreachable, "Mine, no answer"}))
		rec, body := serve(t, h, req)
		for _, other := range []string{unavailable, unreachable} {
			item := itemHTML(t, body, other)
			if !strings.Contains(item, `data-state="queued"`) || strings.Contains(item, "Not stored: the API server no longer knows") {
				t.Errorf("?queued=%s: item %s: got\n%s\nwant it queued, not lost", id, other, item)
			}
		}
		mustContain(t, body, `<div role="status" data-notice-for="`+id+`"`, "Queued: your tech is being analysed")
		mustNotContain(t, body, "Not stored: see the note beside your tech.")
		if ids, set := decodeQueued(t, rec); set && strings.Join(ids, ",") != unavailable+","+unreachable {
			t.Errorf("?queued=%s: queued cookie: got %q (set %v), want it left alone", id, ids, set)
		}
	}

	srv := httptest.NewServer(h)
	defer srv.Close()
	defer pw.Close() // first: it ends the stream, which Close would wait for
	s, _ := openSSE(t, srv, "/events?after=&queued="+unavailable+"&queued="+unreachable)
	// The catch-up comes before the first numbers.
	timeout := time.After(5 * time.Second)
	for done := false; !done; {
		select {
		case ev := <-s.events:
			switch ev[0] {
			case "lost":
				t.Errorf("stream: got lost %s, want no lost event for a tech the api-server cannot tell about", ev[2])
			case "stats":
				done = true
			}
		case <-timeout:
			t.Fatal("no stats event within 5s")
		}
	}
}
