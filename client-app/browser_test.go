package main

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/techlist/techlist"
	"github.com/techlist/techlist/testenv/browser"
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

func TestBrowserAddTech(t *testing.T) {
	ctx := browser.New(t)
	created := time.Date(2025, 5, 6, 7, 8, 0, 0, time.UTC)
	api, apiSrv := newFakeAPIServer(t,
		techlist.Tech{ID: "3", Text: "<script>alert(1)</script>", Priority: techlist.PriorityHigh, CreatedAt: created},
		techlist.Tech{ID: "2", Text: "Redis", Priority: techlist.PriorityMedium, CreatedAt: created},
		techlist.Tech{ID: "1", Text: "MySQL", Priority: techlist.PriorityLow, CreatedAt: created},
	)
	base := startApp(t, apiSrv.URL)
	const itemsJS = `[...document.querySelectorAll("ul[role=list] li p:first-child")].map(p => p.textContent)`

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
	if n := browser.Get(t, ctx, "count scripts", chromedp.Evaluate[int](`document.querySelectorAll("script").length`)); n != 0 {
		t.Errorf("script elements: got %d, want 0", n)
	}

	// Type a tech and submit the form: a plain POST, then a redirect.
	const text = "Go 1.26 & Tailwind"
	browser.Do(t, ctx, "type a tech", chromedp.SendKeys(chromedp.ID("text"), text))
	submit(t, ctx, "submit the form")
	browser.Do(t, ctx, "wait for the notice", chromedp.WaitVisible(chromedp.CSS(`div[role=status]`)))
	notice := browser.Get(t, ctx, "read the notice", chromedp.Text(chromedp.CSS(`div[role=status] p`)))
	if notice != "Queued: your tech is being analysed; it appears in the list once stored." {
		t.Errorf("notice: got %q, want the queued notice", notice)
	}
	if loc := browser.Get(t, ctx, "location", chromedp.Location()); !strings.Contains(loc, "/?queued=") {
		t.Errorf("location after submit: got %q, want /?queued=<id>", loc)
	}
	if got := api.posted(); len(got) != 1 || got[0] != text {
		t.Errorf("api-server got posts %q, want [%q]", got, text)
	}

	// Reload: the tech is listed, newest first.
	browser.Do(t, ctx, "reload",
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(chromedp.ID("text")),
	)
	items = browser.Get(t, ctx, "read the list again", chromedp.Evaluate[[]string](itemsJS))
	if len(items) != 4 || items[0] != text {
		t.Errorf("items after reload: got %q, want %q first of 4", items, text)
	}
	if count := browser.Get(t, ctx, "read the count", chromedp.Text(chromedp.CSS(`#list-heading + p`))); count != "4 techs" {
		t.Errorf("count: got %q, want 4 techs", count)
	}

	// A blank submission comes back with the message beside the field.
	browser.Do(t, ctx, "type a blank tech", chromedp.SetValue(chromedp.ID("text"), "   "))
	submit(t, ctx, "submit a blank tech")
	if msg := browser.Get(t, ctx, "read the field error", chromedp.Text(chromedp.ID("text-error"))); msg != "Text is required" {
		t.Errorf("field error: got %q, want Text is required", msg)
	}

	// The page as a user sees it after adding a tech, for the record.
	browser.Do(t, ctx, "show the queued page",
		chromedp.Navigate(base+"/?queued=0197a1b2-c3d4-7e5f-8a9b-000000000001"),
		chromedp.WaitVisible(chromedp.CSS(`div[role=status]`)),
	)
	if dir := os.Getenv("SCREENSHOT_DIR"); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	browser.Screenshot(t, ctx, "client-app.png")
}
