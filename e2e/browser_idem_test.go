package e2e

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/techlist/e2e/browser"
	"github.com/techlist/techlist/testenv"
)

// doubleClickProxy sits between the browser and the client-app. It holds
// the answer to the first POST of the form until the second POST has
// arrived, so a double click sends two POSTs that both reach the
// client-app, the first fully processed before the second: what a real
// double click does when the first send is quick.
type doubleClickProxy struct {
	next          http.Handler
	posts         atomic.Int32
	first, second chan struct{}
}

func newDoubleClickProxy(t *testing.T, clientURL string) (*doubleClickProxy, string) {
	t.Helper()
	target, err := url.Parse(clientURL)
	if err != nil {
		t.Fatal(err)
	}
	p := &doubleClickProxy{next: httputil.NewSingleHostReverseProxy(target), first: make(chan struct{}), second: make(chan struct{})}
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	return p, srv.URL
}

func (p *doubleClickProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/techs" {
		p.next.ServeHTTP(w, r)
		return
	}
	switch p.posts.Add(1) {
	case 1:
		// Processed in full even when the browser gives up on it.
		rec := httptest.NewRecorder()
		p.next.ServeHTTP(rec, r.WithContext(context.WithoutCancel(r.Context())))
		close(p.first)
		select {
		case <-p.second:
		case <-time.After(20 * time.Second):
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		w.Write(rec.Body.Bytes())
	case 2:
		close(p.second)
		p.next.ServeHTTP(w, r)
	default:
		p.next.ServeHTTP(w, r)
	}
}

// TestBrowserDoubleClickStoresOneTech: a double click on "Add tech" in a
// real browser, both clicks' POSTs reaching the client-app, stores one
// tech, and the page lands on it.
func TestBrowserDoubleClickStoresOneTech(t *testing.T) {
	browser.Find(t)
	t.Parallel()
	s := startStack(t, nil)
	proxy, proxyURL := newDoubleClickProxy(t, s.ClientURL)
	ctx := browser.New(t)
	text := "double-clicked " + testenv.Suffix()
	browser.Do(t, ctx, "open the page and type", chromedp.Navigate(proxyURL+"/"), chromedp.WaitVisible(chromedp.ID("text")),
		chromedp.SendKeys(chromedp.ID("text"), text))
	xy := browser.Get(t, ctx, "find the button", chromedp.Evaluate[[]float64](
		`(r => [r.x + r.width / 2, r.y + r.height / 2])(document.querySelector("button[type=submit]").getBoundingClientRect())`))

	browser.Do(t, ctx, "first click", chromedp.MouseClickXY(xy[0], xy[1]))
	select {
	case <-proxy.first:
	case <-time.After(20 * time.Second):
		t.Fatal("the first click's POST did not reach the client-app")
	}
	browser.Do(t, ctx, "second click", chromedp.MouseClickXY(xy[0], xy[1], chromedp.ClickCount(2)))
	var loc string
	testenv.Eventually(t, "the page of the queued tech", func() bool {
		loc = browser.Get(t, ctx, "location", chromedp.Location())
		return strings.Contains(loc, "/?queued=")
	})
	if n := proxy.posts.Load(); n != 2 {
		t.Fatalf("POSTs of the form: got %d, want the double click's 2", n)
	}
	id := loc[strings.Index(loc, "/?queued=")+len("/?queued="):]

	var list listBody
	testenv.Eventually(t, "the queue to be empty and the tech stored", func() bool {
		var st struct{ Waiting int64 }
		getJSON(t, s.APIURL+"/api/v1/stats", &st)
		getJSON(t, s.APIURL+"/api/v1/techs?limit=100", &list)
		_, ok := contains(list.Data, id)
		return st.Waiting == 0 && ok
	})
	n := 0
	for _, tech := range list.Data {
		if tech.Text == text {
			n++
		}
	}
	if n != 1 {
		t.Errorf("rows with the text: got %d, want 1", n)
	}
}
