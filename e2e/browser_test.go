package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/techlist/techlist/testenv"
	"github.com/techlist/techlist/testenv/browser"
)

// A user in a real browser opens the page, adds a tech with the form, sees
// the queued notice, and after a refresh sees the tech in the list, with
// its markup shown as text and never run.
func TestBrowserAddsTech(t *testing.T) {
	browser.Find(t) // skip before starting the services when there is none
	t.Parallel()
	s := startStack(t, nil)
	ctx := browser.New(t)
	suffix := testenv.Suffix()
	text := `<img src=x onerror="document.title='pwned'"> Browser ` + suffix

	browser.Do(t, ctx, "open the page",
		chromedp.Navigate(s.ClientURL+"/"),
		chromedp.WaitVisible(chromedp.ID("text")),
	)
	browser.Do(t, ctx, "type a tech", chromedp.SendKeys(chromedp.ID("text"), text))
	browser.Do(t, ctx, "submit", chromedp.Submit(chromedp.ID("text")))
	browser.Do(t, ctx, "wait for the queued notice", chromedp.WaitVisible(chromedp.CSS(`[role=status]`)))
	if loc := browser.Get(t, ctx, "location", chromedp.Location()); !strings.Contains(loc, "queued=") {
		t.Errorf("after submitting: got location %q, want the page with ?queued=<id>", loc)
	}

	deadline := time.Now().Add(20 * time.Second)
	for {
		browser.Do(t, ctx, "refresh", chromedp.Navigate(s.ClientURL+"/"), chromedp.WaitVisible(chromedp.ID("text")))
		body := browser.Get(t, ctx, "read the page", chromedp.Text(chromedp.CSS("body")))
		if strings.Contains(body, text) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the tech did not appear in the list within 20s; page text:\n%s", body)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if title := browser.Get(t, ctx, "title", chromedp.Title()); title == "pwned" {
		t.Error("the submitted markup ran in the page")
	}
	if n := browser.Get(t, ctx, "count injected images", chromedp.Evaluate[int](`document.querySelectorAll("img[src=x]").length`)); n != 0 {
		t.Errorf("found %d injected <img> elements, want 0", n)
	}
	browser.Screenshot(t, ctx, "main-page.png")
}
