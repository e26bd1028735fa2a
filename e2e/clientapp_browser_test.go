package e2e

// The client-app's own pages in a real browser, over a fake api-server: the
// built client-app program, on a port of its own, talks to an httptest
// server in this process that plays the api-server (see fakeapi_test.go).

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
	"github.com/techlist/e2e/browser"
	"github.com/techlist/techlist"
	"github.com/techlist/techlist/testenv/fakeapi"
)

// submit clicks the form's button and waits for the page it leads to.
func submit(t *testing.T, ctx context.Context, step string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, browser.StepTimeout)
	defer cancel()
	// RunResponse waits for the navigation the click starts.
	if _, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(`button[type=submit]`))); err != nil {
		t.Fatalf("%s: %v", step, err)
	}
}

// waitJS waits until the JavaScript expression is true, for 10s at most.
func waitJS(t *testing.T, ctx context.Context, what, expr string) {
	t.Helper()
	browser.Do(t, ctx, "wait for "+what, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := chromedp.Poll[bool](expr, chromedp.WithPollingInterval(20*time.Millisecond), chromedp.WithPollingTimeout(10*time.Second))(ctx, tg)
		return err
	}))
}

// look sets the colour scheme and the viewport width the page is shown at.
func look(dark bool, width, height int64) chromedp.Action[chromedp.Void] {
	scheme := "light"
	if dark {
		scheme = "dark"
	}
	return chromedp.Steps(
		chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			_, err := cdp.Call(ctx, tg, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
				Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}},
			})
			return err
		}),
		chromedp.EmulateViewport(width, height),
	)
}

const itemsJS = `[...document.querySelectorAll("#techs > li[data-id]")].map(li => li.querySelector("[data-field=text]").textContent)`

func TestBrowserAddTech(t *testing.T) {
	ctx := browser.New(t)
	created := time.Date(2025, 5, 6, 7, 8, 0, 0, time.UTC)
	api := fakeapi.Start(t,
		techlist.Tech{ID: fakeapi.ID(created, 3), Text: "<script>alert(1)</script>", Priority: techlist.PriorityHigh, CreatedAt: created, SubmittedAt: created.Add(-time.Second)},
		techlist.Tech{ID: fakeapi.ID(created, 2), Text: "Redis", Priority: techlist.PriorityMedium, CreatedAt: created, SubmittedAt: created.Add(-time.Second)},
		techlist.Tech{ID: fakeapi.ID(created, 1), Text: "MySQL", Priority: techlist.PriorityLow, CreatedAt: created, SubmittedAt: created.Add(-time.Second)},
	)
	api.StoreAfter(1500 * time.Millisecond)
	base := startClientApp(t, api.URL)

	browser.Do(t, ctx, "open the page",
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(chromedp.ID("text")),
	)
	if title := browser.Get(t, ctx, "title", chromedp.Title()); title != "Tech Summary" {
		t.Errorf("title: got %q, want Tech Summary", title)
	}
	// The script-looking item is shown as text, never run as a script.
	items := browser.Get(t, ctx, "read the list", chromedp.Evaluate[[]string](itemsJS))
	if len(items) != 3 || items[0] != "<script>alert(1)</script>" {
		t.Errorf("items: got %q, want <script>alert(1)</script> first of 3", items)
	}
	if srcs := browser.Get(t, ctx, "list scripts", chromedp.Evaluate[[]string](`[...document.scripts].map(s => s.src ? new URL(s.src).pathname : "inline")`)); len(srcs) != 1 || srcs[0] != "/static/app.js" {
		t.Errorf("scripts: got %q, want only /static/app.js", srcs)
	}
	waitJS(t, ctx, "live updates on", `document.querySelector("[data-live-dot]").dataset.state === "on"`)
	browser.Do(t, ctx, "mark the page", chromedp.Evaluate[chromedp.Void](`window.notReloaded = true`))

	// Type a tech and submit the form: a plain POST, then a redirect to the
	// page, where it is queued at once.
	const text = "Go 1.26 & Tailwind"
	browser.Do(t, ctx, "type a tech", chromedp.SendKeys(chromedp.ID("text"), text))
	submit(t, ctx, "submit the form")
	browser.Do(t, ctx, "wait for the notice", chromedp.WaitVisible(chromedp.CSS(`div[role=status]`)))
	if loc := browser.Get(t, ctx, "location", chromedp.Location()); !strings.Contains(loc, "/?queued=") {
		t.Errorf("location after submit: got %q, want /?queued=<id>", loc)
	}
	first := `document.querySelector("#techs > li[data-id]")`
	if got := browser.Get(t, ctx, "read the queued item", chromedp.Evaluate[[]string](`[`+first+`.dataset.state, `+first+`.querySelector("[data-field=text]").textContent, `+first+`.querySelector("[data-field=badge]").textContent]`)); strings.Join(got, "|") != "queued|"+text+"|queued" {
		t.Errorf("first item after submitting: got %q, want queued|%s|queued", got, text)
	}
	if got := api.Posted(); len(got) != 1 || got[0] != text {
		t.Errorf("api-server got posts %q, want [%q]", got, text)
	}

	// The worker stores it: the item turns into its stored form, without a
	// reload.
	browser.Do(t, ctx, "mark the page", chromedp.Evaluate[chromedp.Void](`window.notReloaded = true`))
	waitJS(t, ctx, "the stored form", first+`.dataset.state === "stored"`)
	if badge := browser.Get(t, ctx, "read the badge", chromedp.Evaluate[string](first+`.querySelector("[data-field=badge]").textContent`)); badge != "Priority: medium" {
		t.Errorf("badge: got %q, want Priority: medium", badge)
	}
	if !browser.Get(t, ctx, "check no reload", chromedp.Evaluate[bool](`window.notReloaded === true`)) {
		t.Error("the page was reloaded")
	}
	if got := browser.Get(t, ctx, "read the count", chromedp.Text(chromedp.CSS(`#list-count`))); got != "4 stored · 4 shown" {
		waitJS(t, ctx, "the count", `document.querySelector("#list-count").textContent === "4 stored · 4 shown"`)
	}

	// A blank submission comes back with the message beside the field.
	browser.Do(t, ctx, "type a blank tech", chromedp.SetValue(chromedp.ID("text"), "   "))
	submit(t, ctx, "submit a blank tech")
	if msg := browser.Get(t, ctx, "read the field error", chromedp.Text(chromedp.ID("text-error"))); msg != "Text is required" {
		t.Errorf("field error: got %q, want Text is required", msg)
	}

	if dir := os.Getenv("SCREENSHOT_DIR"); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// The page as users see it, light and dark, wide and narrow, for the
	// record (and for looking at).
	browser.Do(t, ctx, "show the page", chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.ID("text")))
	waitJS(t, ctx, "live updates on", `document.querySelector("[data-live-dot]").dataset.state === "on"`)
	browser.Screenshot(t, ctx, "client-app.png")
	browser.Do(t, ctx, "dark", look(true, 1024, 900))
	browser.Screenshot(t, ctx, "client-app-dark.png")
	browser.Do(t, ctx, "phone", look(false, 390, 844))
	browser.Screenshot(t, ctx, "client-app-phone.png")
	browser.Do(t, ctx, "phone, dark", look(true, 390, 844))
	browser.Screenshot(t, ctx, "client-app-phone-dark.png")
	browser.Do(t, ctx, "the about page", look(false, 1280, 900), chromedp.Navigate(base+"/about"), chromedp.WaitVisible(chromedp.CSS(`img[alt^="Data flow"]`)))
	waitJS(t, ctx, "live numbers", `document.querySelector("[data-live-dot]").dataset.state === "on"`)
	browser.Screenshot(t, ctx, "client-app-about.png")
	browser.Do(t, ctx, "the about page, dark", look(true, 1280, 900))
	browser.Screenshot(t, ctx, "client-app-about-dark.png")
}

// A tech the worker does not store within QUEUED_TIMEOUT says so plainly.
func TestBrowserQueuedTimeout(t *testing.T) {
	ctx := browser.New(t)
	api := fakeapi.Start(t)
	api.NeverStore()
	base := startClientApp(t, api.URL, "QUEUED_TIMEOUT", "1500ms")

	browser.Do(t, ctx, "open the page", chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.ID("text")))
	browser.Do(t, ctx, "type a tech", chromedp.SendKeys(chromedp.ID("text"), "Kafka"))
	submit(t, ctx, "submit the form")
	first := `document.querySelector("#techs > li[data-id]")`
	if state := browser.Get(t, ctx, "read the state", chromedp.Evaluate[string](first+`.dataset.state`)); state != "queued" {
		t.Errorf("state: got %q, want queued", state)
	}
	waitJS(t, ctx, "the timeout", first+`.dataset.state === "late"`)
	note := browser.Get(t, ctx, "read the note", chromedp.Evaluate[string](first+`.querySelector("[data-field=note]").textContent`))
	if !strings.HasPrefix(note, "Not stored after 1.5 seconds.") {
		t.Errorf("note: got %q, want it to say it was not stored after 1.5 seconds", note)
	}
	if badge := browser.Get(t, ctx, "read the badge", chromedp.Evaluate[string](first+`.querySelector("[data-field=badge]").textContent`)); badge != "not stored yet" {
		t.Errorf("badge: got %q, want not stored yet", badge)
	}
	// Without JavaScript, a reload says the same, rendered by the server.
	browser.Do(t, ctx, "reload", chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("text")))
	if state := browser.Get(t, ctx, "read the state again", chromedp.Evaluate[string](first+`.dataset.state`)); state != "late" {
		t.Errorf("state after a reload: got %q, want late", state)
	}
}
