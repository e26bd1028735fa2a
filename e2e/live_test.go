package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/techlist/e2e/browser"
	"github.com/techlist/techlist/testenv"
	"github.com/techlist/techlist/testenv/stack"
)

// The live pages in a real browser, against the three programs on the
// real Redis and MariaDB: a tech added with the form goes from "queued" to
// its stored form without a reload, and another browser sees it arrive;
// paging with and without JavaScript; markup shown as text; the page with
// the api-server gone; the form used with the keyboard alone.

// liveFirst is the first item of the list.
const liveFirst = `document.querySelector("#techs > li[data-id]")`

// livePoll waits until the JavaScript expression is true in the tab, for
// timeout at most, and returns how long that took.
func livePoll(t *testing.T, ctx context.Context, what, expr string, timeout time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, timeout+5*time.Second)
	defer cancel()
	_, err := chromedp.Run(ctx, chromedp.Poll[bool](expr, chromedp.WithPollingInterval(20*time.Millisecond), chromedp.WithPollingTimeout(timeout)))
	if err != nil {
		page := browser.Get(t, ctx, "read the page", chromedp.Text(chromedp.CSS("main")))
		t.Fatalf("waiting %v for %s: %v\npage text:\n%s", timeout, what, err, page)
	}
	return time.Since(start)
}

// liveOpen opens the Tech Summary page and waits until its live updates
// are on, then marks the window so that a reload would show.
func liveOpen(t *testing.T, ctx context.Context, url string) {
	t.Helper()
	browser.Do(t, ctx, "open "+url, chromedp.Navigate(url), chromedp.WaitVisible(chromedp.ID("text")))
	livePoll(t, ctx, "live updates on", `document.querySelector("[data-live-dot]").dataset.state === "on"`, 15*time.Second)
	browser.Do(t, ctx, "mark the window", chromedp.Evaluate[chromedp.Void](`window.notReloaded = true`))
}

func liveNotReloaded(t *testing.T, ctx context.Context, who string) {
	t.Helper()
	if !browser.Get(t, ctx, "check the mark", chromedp.Evaluate[bool](`window.notReloaded === true`)) {
		t.Errorf("%s: the page was reloaded, want live updates without a reload", who)
	}
}

// liveSubmit clicks "Add tech" and waits for the page the POST leads to.
func liveSubmit(t *testing.T, ctx context.Context) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, browser.StepTimeout)
	defer cancel()
	if _, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(`button[type=submit]`))); err != nil {
		t.Fatalf("submit the form: %v", err)
	}
}

// liveItem returns the state, text and badge of the first item.
func liveItem(t *testing.T, ctx context.Context) (state, text, badge string) {
	t.Helper()
	v := browser.Get(t, ctx, "read the first item", chromedp.Evaluate[[]string](
		`[`+liveFirst+`.dataset.state, `+liveFirst+`.querySelector("[data-field=text]").textContent, `+liveFirst+`.querySelector("[data-field=badge]").textContent]`))
	return v[0], v[1], v[2]
}

// liveItemWith is the item whose text is text, as JavaScript.
func liveItemWith(text string) string {
	q, _ := json.Marshal(text)
	return `[...document.querySelectorAll("#techs > li[data-id]")].find(li => li.querySelector("[data-field=text]").textContent === ` + string(q) + `)`
}

// liveStored is true once the item with text is stored with a priority.
func liveStored(text string) string {
	return `(li => !!li && li.dataset.state === "stored" && /^Priority: (low|medium|high)$/.test(li.querySelector("[data-field=badge]").textContent))(` + liveItemWith(text) + `)`
}

// TestLiveQueuedToStored: a tech added with the form shows at once as
// queued, then turns into its stored form with its priority, without a
// reload; a second browser on the page sees it arrive live.
func TestLiveQueuedToStored(t *testing.T) {
	browser.Find(t)
	// The task takes 1.5s, so the queued state is there to be seen.
	s := startStack(t, map[string]string{"TASK_COST": "1500ms"})
	// A few stored already, for a list worth a screenshot.
	seeds := []string{"Redis Streams", "Server-Sent Events", "Security patch for OpenSSL", "Tailwind CSS 4", "Go 1.26"}
	for _, text := range seeds {
		stack.PostTech(t, s.APIURL, text)
	}
	testenv.Eventually(t, "the seeds stored", func() bool {
		var page listBody
		getJSON(t, s.APIURL+"/api/v1/techs", &page)
		return len(page.Data) == len(seeds)
	})
	alice, bob := browser.New(t), browser.New(t)
	liveOpen(t, alice, s.ClientURL+"/")
	liveOpen(t, bob, s.ClientURL+"/")
	text := "Live " + testenv.Suffix()

	browser.Do(t, alice, "type a tech", chromedp.SendKeys(chromedp.ID("text"), text))
	liveSubmit(t, alice)
	state, got, badge := liveItem(t, alice)
	t.Logf("after submitting: first item %q is %s, badge %q", got, state, badge)
	if state != "queued" || got != text || badge != "queued" {
		t.Errorf("first item after submitting: got %s %q badge %q, want queued %q badge queued", state, got, badge, text)
	}
	// From here on, no navigation.
	livePoll(t, alice, "live updates on after the redirect", `document.querySelector("[data-live-dot]").dataset.state === "on"`, 15*time.Second)
	browser.Do(t, alice, "mark the window", chromedp.Evaluate[chromedp.Void](`window.notReloaded = true`))

	took := livePoll(t, alice, "the stored form", liveStored(text), 20*time.Second)
	state, got, badge = liveItem(t, alice)
	t.Logf("stored: %s %q %q, %v after the page showed it queued", state, got, badge, took)
	liveNotReloaded(t, alice, "the submitter")
	if note := browser.Get(t, alice, "read the note", chromedp.Evaluate[bool](liveFirst+`.querySelector("[data-field=note]").hidden`)); !note {
		t.Error("the queued note is still shown on the stored item")
	}
	if got := browser.Get(t, alice, "read the notice", chromedp.Text(chromedp.CSS("[data-notice]"))); got != "Stored: your tech is in the list with its priority." {
		t.Errorf("notice: got %q, want it to say the tech is stored", got)
	}

	// The other browser has it too, live: it arrived within about a second
	// of the worker's commit, so by now or very soon.
	late := livePoll(t, bob, "the tech in the second browser", liveStored(text), 5*time.Second)
	t.Logf("second browser: it was there %v after the first saw it stored", late)
	if late > 2*time.Second {
		t.Errorf("second browser: got the tech %v after the first browser, want within a second or so", late)
	}
	liveNotReloaded(t, bob, "the second browser")
	if state, got, _ := liveItem(t, bob); state != "stored" || got != text {
		t.Errorf("second browser's first item: got %s %q, want the new tech on top, stored", state, got)
	}

	// The numbers follow: nothing waits any more, and one more is stored.
	livePoll(t, alice, "nothing waiting", `document.querySelector('[data-stat="waiting"]').textContent === "0"`, 15*time.Second)
	livePoll(t, bob, "the total", `document.querySelector('[data-stat="total"]').textContent === "6"`, 15*time.Second)
	livePoll(t, alice, "the highlight gone", `!document.querySelector("li[data-fresh]")`, 10*time.Second)
	browser.Screenshot(t, alice, "live-main-page.png")
}

// TestLivePaging pages through 7 techs 3 at a time (PAGE_SIZE=3): with
// JavaScript "More techs" loads them in place; without, it is a link to
// the next page.
func TestLivePaging(t *testing.T) {
	browser.Find(t)
	s := startStack(t, map[string]string{"PAGE_SIZE": "3"})
	prefix := "Page " + testenv.Suffix() + " #"
	for i := 1; i <= 7; i++ {
		stack.PostTech(t, s.APIURL, prefix+strconv.Itoa(i))
	}
	// Ids order by submission: newest first is 7 down to 1.
	var want []string
	for i := 7; i >= 1; i-- {
		want = append(want, prefix+strconv.Itoa(i))
	}
	testenv.Eventually(t, "the 7 techs stored", func() bool {
		var page listBody
		getJSON(t, s.APIURL+"/api/v1/techs?limit=10", &page)
		return len(page.Data) == 7
	})
	items := `[...document.querySelectorAll("#techs > li[data-id]")].map(li => li.querySelector("[data-field=text]").textContent)`

	t.Run("with JavaScript", func(t *testing.T) {
		ctx := browser.New(t)
		liveOpen(t, ctx, s.ClientURL+"/")
		if got := browser.Get(t, ctx, "read the list", chromedp.Evaluate[[]string](items)); strings.Join(got, "|") != strings.Join(want[:3], "|") {
			t.Errorf("first page: got %q, want %q", got, want[:3])
		}
		livePoll(t, ctx, "the total", `document.querySelector("#list-count").textContent === "7 stored · 3 shown"`, 10*time.Second)
		for _, n := range []int{6, 7} {
			browser.Do(t, ctx, "click More techs", chromedp.Click(chromedp.CSS("a[data-more]")))
			livePoll(t, ctx, fmt.Sprintf("%d items", n), items+`.length === `+strconv.Itoa(n), 10*time.Second)
		}
		if got := browser.Get(t, ctx, "read the list", chromedp.Evaluate[[]string](items)); strings.Join(got, "|") != strings.Join(want, "|") {
			t.Errorf("after More twice: got %q, want %q", got, want)
		}
		if n := browser.Get(t, ctx, "count More links", chromedp.Evaluate[int](`document.querySelectorAll("a[data-more]").length`)); n != 0 {
			t.Errorf("More links after the last page: got %d, want 0", n)
		}
		if got := browser.Get(t, ctx, "read the count", chromedp.Text(chromedp.CSS("#list-count"))); got != "7 stored · 7 shown" {
			t.Errorf("count: got %q, want 7 stored · 7 shown", got)
		}
		liveNotReloaded(t, ctx, "paging in place")
		if loc := browser.Get(t, ctx, "location", chromedp.Location()); strings.Contains(loc, "cursor=") {
			t.Errorf("location: got %q, want the first page still", loc)
		}
	})

	t.Run("without JavaScript", func(t *testing.T) {
		ctx := browser.New(t)
		browser.Do(t, ctx, "turn JavaScript off", chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			_, err := cdp.Call(ctx, tg, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true})
			return err
		}))
		browser.Do(t, ctx, "open the page", chromedp.Navigate(s.ClientURL+"/"), chromedp.WaitVisible(chromedp.ID("text")))
		var seen []string
		for pageNo := 1; ; pageNo++ {
			got := browser.Get(t, ctx, "read the list", chromedp.Evaluate[[]string](items))
			seen = append(seen, got...)
			if n := browser.Get(t, ctx, "count More links", chromedp.Evaluate[int](`document.querySelectorAll("a[data-more]").length`)); n == 0 {
				break
			}
			if pageNo > 3 {
				t.Fatalf("more than 3 pages: %q", seen)
			}
			ctx2, cancel := context.WithTimeout(ctx, browser.StepTimeout)
			_, err := chromedp.RunResponse(ctx2, chromedp.Click(chromedp.CSS("a[data-more]")))
			cancel()
			if err != nil {
				t.Fatalf("follow More techs: %v", err)
			}
			if loc := browser.Get(t, ctx, "location", chromedp.Location()); !strings.Contains(loc, "/?cursor=") {
				t.Errorf("page %d: location %q, want /?cursor=…", pageNo+1, loc)
			}
			if state := browser.Get(t, ctx, "read the live status", chromedp.Text(chromedp.CSS("[data-live-status]"))); !strings.HasPrefix(state, "Off.") {
				t.Errorf("live status without JavaScript: got %q, want Off", state)
			}
		}
		if strings.Join(seen, "|") != strings.Join(want, "|") {
			t.Errorf("pages without JavaScript: got %q, want %q", seen, want)
		}
		if n := browser.Get(t, ctx, "count Newest links", chromedp.Evaluate[int](`[...document.querySelectorAll("nav[data-pager] a")].filter(a => a.textContent.includes("Newest")).length`)); n != 1 {
			t.Errorf("last page: got %d links back to the newest, want 1", n)
		}

		// The form works too: a plain POST, the page shows the tech
		// queued, and Refresh shows it stored.
		text := prefix + "no-JS"
		browser.Do(t, ctx, "back to the newest", chromedp.Navigate(s.ClientURL+"/"), chromedp.WaitVisible(chromedp.ID("text")))
		browser.Do(t, ctx, "type a tech", chromedp.SendKeys(chromedp.ID("text"), text))
		liveSubmit(t, ctx)
		if state, got, _ := liveItem(t, ctx); got != text || (state != "queued" && state != "stored") {
			t.Errorf("after submitting without JavaScript: first item %s %q, want %q queued (or already stored)", state, got, text)
		}
		testenv.Eventually(t, "the tech stored, seen by refreshing", func() bool {
			ctx2, cancel := context.WithTimeout(ctx, browser.StepTimeout)
			defer cancel()
			if _, err := chromedp.RunResponse(ctx2, chromedp.Click(chromedp.CSS(`a[href="/"]:has(span[aria-hidden])`))); err != nil {
				t.Fatalf("follow Refresh: %v", err)
			}
			state, got, _ := liveItem(t, ctx)
			return state == "stored" && got == text
		})
	})
}

// liveDialogs records every JavaScript dialog the tab opens (and closes
// it, so the page does not hang).
func liveDialogs(t *testing.T, ctx context.Context) func() []string {
	var mu sync.Mutex
	var opened []string
	events := chromedp.Events(ctx, page.JavascriptDialogOpening)
	go func() {
		for ev, err := range events {
			if err != nil {
				return
			}
			mu.Lock()
			opened = append(opened, ev.Message)
			mu.Unlock()
			go chromedp.Do(ctx, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
				_, err := cdp.Call(ctx, tg, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true})
				return err
			}))
		}
	}()
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), opened...)
	}
}

// TestLiveMarkupIsText: a tech named like a script shows as text, as the
// server renders it (queued) and as the script fills it in (stored, and
// arriving live in another browser), and nothing of it runs.
func TestLiveMarkupIsText(t *testing.T) {
	browser.Find(t)
	s := startStack(t, map[string]string{"TASK_COST": "500ms"})
	submitter, watcher := browser.New(t), browser.New(t)
	dialogs := []func() []string{liveDialogs(t, submitter), liveDialogs(t, watcher)}
	liveOpen(t, submitter, s.ClientURL+"/")
	liveOpen(t, watcher, s.ClientURL+"/")
	text := `<script>alert(1)</script><img src=x onerror="alert(2);document.title='pwned'"> ` + testenv.Suffix()

	browser.Do(t, submitter, "type the tech", chromedp.SendKeys(chromedp.ID("text"), text))
	liveSubmit(t, submitter)
	if state, got, _ := liveItem(t, submitter); state != "queued" || got != text {
		t.Errorf("queued item: got %s %q, want queued with the text as typed", state, got)
	}
	livePoll(t, submitter, "the stored form", liveStored(text), 20*time.Second)
	livePoll(t, watcher, "the tech arriving live", liveStored(text), 10*time.Second)

	for name, ctx := range map[string]context.Context{"submitter": submitter, "watcher": watcher} {
		if got := browser.Get(t, ctx, "read the item", chromedp.Evaluate[string](liveItemWith(text)+`.querySelector("[data-field=text]").textContent`)); got != text {
			t.Errorf("%s: item text got %q, want %q", name, got, text)
		}
		if n := browser.Get(t, ctx, "count injected images", chromedp.Evaluate[int](`document.querySelectorAll("img[src=x], #techs img").length`)); n != 0 {
			t.Errorf("%s: found %d injected <img> elements, want 0", name, n)
		}
		if srcs := browser.Get(t, ctx, "list scripts", chromedp.Evaluate[[]string](`[...document.scripts].map(s => s.src ? new URL(s.src).pathname : "inline")`)); len(srcs) != 1 || srcs[0] != "/static/app.js" {
			t.Errorf("%s: scripts %q, want only /static/app.js", name, srcs)
		}
		if title := browser.Get(t, ctx, "title", chromedp.Title()); title != "Tech Summary" {
			t.Errorf("%s: title %q, want Tech Summary (the markup ran)", name, title)
		}
	}
	// Reloaded, the server renders it stored; still text.
	browser.Do(t, watcher, "reload", chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("text")))
	if got := browser.Get(t, watcher, "read the item", chromedp.Evaluate[string](liveItemWith(text)+`.querySelector("[data-field=text]").textContent`)); got != text {
		t.Errorf("after a reload: item text got %q, want %q", got, text)
	}
	for i, d := range dialogs {
		if got := d(); len(got) != 0 {
			t.Errorf("browser %d: dialogs opened %q, want none", i+1, got)
		}
	}
}

// TestLiveAPIDown: a client-app whose api-server is not there shows a
// message the user can act on, on the page, in the status strip and on
// submitting, with the text kept in the box.
func TestLiveAPIDown(t *testing.T) {
	browser.Find(t)
	dead := fmt.Sprintf("http://127.0.0.1:%d", testenv.FreePort(t)) // nothing listens there
	client := liveStartClient(t, map[string]string{"API_URL": dead, "API_TIMEOUT": "2s"})
	ctx := browser.New(t)

	browser.Do(t, ctx, "open the page", chromedp.Navigate(client+"/"), chromedp.WaitVisible(chromedp.ID("text")))
	alert := browser.Get(t, ctx, "read the alert", chromedp.Text(chromedp.CSS(`[role=alert]`)))
	if !strings.Contains(alert, "The API server is unreachable") || !strings.Contains(alert, "Check that the api-server is running, then refresh.") {
		t.Errorf("alert: got %q, want it to say the API server is unreachable and what to do", alert)
	}
	if got := browser.Get(t, ctx, "read the waiting count", chromedp.Text(chromedp.CSS(`[data-stat="waiting"]`))); got != "–" {
		t.Errorf("waiting: got %q, want – (unknown)", got)
	}
	livePoll(t, ctx, "live updates paused", `document.querySelector("[data-live-status]").textContent.startsWith("Paused: the API server is unreachable")`, 15*time.Second)

	// Submitting says the tech was not submitted, and keeps the text.
	const text = "Not lost when the API is down"
	browser.Do(t, ctx, "type a tech", chromedp.SendKeys(chromedp.ID("text"), text))
	liveSubmit(t, ctx)
	msg := browser.Get(t, ctx, "read the form's alert", chromedp.Text(chromedp.CSS(`form [role=alert]`)))
	if !strings.Contains(msg, "your tech was not submitted") {
		t.Errorf("form alert: got %q, want it to say the tech was not submitted", msg)
	}
	if got := browser.Get(t, ctx, "read the box", chromedp.Evaluate[string](`document.getElementById("text").value`)); got != text {
		t.Errorf("text box: got %q, want the text kept: %q", got, text)
	}
	browser.Screenshot(t, ctx, "api-down.png")
}

// liveStartClient runs the built client-app with env (and LOG_FORMAT=text)
// until the test ends, when it must exit 0 on SIGTERM. It returns its URL.
func liveStartClient(t *testing.T, env map[string]string) string {
	t.Helper()
	s := stack.New(t, binDir)
	url := s.Add(t, "client-app", stack.Environ(map[string]string{"LOG_FORMAT": "text"}, env))
	s.WaitReady(t, "client-app", "/healthz") // not /readyz: the api-server is away
	return url
}

// TestLiveKeyboardOnly: the form is reached with Tab alone, each control
// showing where the focus is, and Enter submits it.
func TestLiveKeyboardOnly(t *testing.T) {
	browser.Find(t)
	s := startStack(t, nil)
	ctx := browser.New(t)
	liveOpen(t, ctx, s.ClientURL+"/")
	text := "Keyboard " + testenv.Suffix()

	// What has the focus, and whether it shows: an outline or a ring, and
	// a size (the skip link is visible only while focused).
	const focused = `(() => { const el = document.activeElement; const cs = getComputedStyle(el); const r = el.getBoundingClientRect();
		return [el.id || el.textContent.trim().slice(0, 20) || el.tagName, String((cs.outlineStyle !== "none" && parseFloat(cs.outlineWidth) > 0) || cs.boxShadow !== "none"), String(r.width > 1 && r.height > 1)]; })()`
	var path []string
	for i := 0; ; i++ {
		if i == 15 {
			t.Fatalf("the text box not reached after 15 Tab presses; focus went %q", path)
		}
		browser.Do(t, ctx, "press Tab", chromedp.KeyEvent(kb.Tab))
		f := browser.Get(t, ctx, "read the focus", chromedp.Evaluate[[]string](focused))
		path = append(path, f[0])
		if f[1] != "true" || f[2] != "true" {
			t.Errorf("focus on %q: visible focus indicator %s, visible %s; want both", f[0], f[1], f[2])
		}
		if f[0] == "text" {
			break
		}
	}
	t.Logf("Tab order to the text box: %q", path)
	if path[0] != "Skip to content" {
		t.Errorf("first Tab: got %q, want the skip link", path[0])
	}

	browser.Do(t, ctx, "type", chromedp.KeyEvent(text))
	ctx2, cancel := context.WithTimeout(ctx, browser.StepTimeout)
	defer cancel()
	if _, err := chromedp.RunResponse(ctx2, chromedp.KeyEvent(kb.Enter)); err != nil {
		t.Fatalf("press Enter: %v", err)
	}
	if loc := browser.Get(t, ctx, "location", chromedp.Location()); !strings.Contains(loc, "/?queued=") {
		t.Errorf("after Enter: location %q, want /?queued=<id>", loc)
	}
	livePoll(t, ctx, "the tech stored", liveStored(text), 20*time.Second)

	// The "More techs" control and the navigation are links, so the
	// keyboard reaches them too; the submit button is a real button.
	if got := browser.Get(t, ctx, "button type", chromedp.Evaluate[string](`document.querySelector("form button").type`)); got != "submit" {
		t.Errorf("the form's button: type %q, want submit", got)
	}
}
