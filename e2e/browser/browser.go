// Package browser starts a headless Chromium for tests, driven through
// chromedp. A test calls New; when no Chromium is installed the test is
// skipped with a line saying so, unless REQUIRE_BROWSER=1, when it fails.
// It lives in the test-only e2e module so that no production module
// requires chromedp.
package browser

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// StepTimeout bounds each browser step a test runs with Run.
const StepTimeout = 30 * time.Second

// Find returns the path of Debian's chromium (or another Chromium-like
// browser), skipping the test when there is none unless REQUIRE_BROWSER=1.
func Find(tb testing.TB) string {
	tb.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if path, err := exec.LookPath(name); err == nil {
			return path
		}
	}
	if os.Getenv("REQUIRE_BROWSER") == "1" {
		tb.Fatal("chromium not found and REQUIRE_BROWSER=1: install Debian's chromium (apt-get install chromium)")
	}
	tb.Skip("chromium not found; skipping the browser test (install Debian's chromium to run it)")
	return ""
}

// New starts a headless Chromium with a fresh profile and returns a tab's
// context. The browser stops when the test ends. Each call is a separate
// browser, so two calls are two users who share nothing.
func New(tb testing.TB) context.Context {
	tb.Helper()
	path := Find(tb)
	profile, err := os.MkdirTemp("", "techlist-chromium-")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		// Chromium's helpers may write to the profile for a moment after
		// the browser stops, so removal is retried.
		for range 50 {
			if os.RemoveAll(profile) == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
	// The flags keep Chromium off the network it cannot reach here (the
	// background services), and make it run as root in a container.
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(profile),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.WindowSize(1024, 900),
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	tb.Cleanup(cancelAlloc)
	ctx, cancelTab := chromedp.NewContext(allocCtx, chromedp.WithLogf(tb.Logf))
	tb.Cleanup(cancelTab)
	// The first Run starts the browser and binds its life to ctx, so it
	// runs on the untimed context; every later step has its own bound.
	if err := chromedp.Do(ctx); err != nil {
		tb.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// Do runs steps in the tab within StepTimeout, failing the test with step
// named when they fail.
func Do(tb testing.TB, ctx context.Context, step string, steps ...chromedp.Action[chromedp.Void]) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(ctx, StepTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		tb.Fatalf("%s: %v", step, err)
	}
}

// Get runs action in the tab within StepTimeout and returns its result,
// failing the test with step named when it fails.
func Get[T any](tb testing.TB, ctx context.Context, step string, action chromedp.Action[T]) T {
	tb.Helper()
	ctx, cancel := context.WithTimeout(ctx, StepTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, action)
	if err != nil {
		tb.Fatalf("%s: %v", step, err)
	}
	return v
}

// Screenshot saves a full-page PNG of the tab and returns its path: name in
// SCREENSHOT_DIR when that is set, else in the test's temporary folder.
func Screenshot(tb testing.TB, ctx context.Context, name string) string {
	tb.Helper()
	dir := os.Getenv("SCREENSHOT_DIR")
	if dir == "" {
		dir = tb.TempDir()
	}
	png := Get(tb, ctx, "screenshot", chromedp.FullScreenshot(100))
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		tb.Fatalf("save screenshot: %v", err)
	}
	tb.Logf("screenshot: %s", path)
	return path
}
