package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/techlist/techlist/testenv"
)

// openStream opens a Server-Sent Events stream at url and reads it until a
// line containing want; the stream stays open until the test ends.
func openStream(t *testing.T, url, want string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: got %s, want 200", url, resp.Status)
	}
	found := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if strings.Contains(sc.Text(), want) {
				found <- true
				io.Copy(io.Discard, resp.Body) // keep reading: heartbeats
				return
			}
		}
		found <- false
	}()
	select {
	case ok := <-found:
		if !ok {
			t.Fatalf("GET %s: stream ended before %q", url, want)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("GET %s: no %q within 20s", url, want)
	}
}

// metricValue reads one sample from a /metrics page; -1 when absent.
func metricValue(t *testing.T, url, series string) float64 {
	t.Helper()
	m := regexp.MustCompile(`\n` + regexp.QuoteMeta(series) + ` ([0-9.e+]+)\n`).FindStringSubmatch(scrape(t, url))
	if m == nil {
		return -1
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatalf("%s: %v", series, err)
	}
	return v
}

// Many pages open on the client-app share one upstream event stream and
// one read of the numbers per interval; each server caps its streams.
func TestLiveStreamsShareOneUpstreamAndAreCapped(t *testing.T) {
	t.Parallel()
	const capacity = 5
	s := startStack(t, map[string]string{"EVENTS_MAX_CLIENTS": strconv.Itoa(capacity)})
	statsReads := `api_http_requests_total{method="GET",route="/api/v1/stats",status="200"}`
	before := max(metricValue(t, s.APIURL+"/metrics", statsReads), 0)

	for range capacity {
		openStream(t, s.ClientURL+"/events", `"live":true`)
	}
	if got := metricValue(t, s.APIURL+"/metrics", "api_event_stream_clients"); got != 1 {
		t.Errorf("api-server event stream clients with %d pages open: got %v, want 1", capacity, got)
	}
	// One read when the shared connection opened (two if an interval
	// passed meanwhile), however many pages.
	if got := metricValue(t, s.APIURL+"/metrics", statsReads) - before; got > 2 {
		t.Errorf("stats reads for %d pages: got %v, want at most 2", capacity, got)
	}
	resp, err := http.Get(s.ClientURL + "/events")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("client-app stream %d past a cap of %d: got %s, want 503", capacity+1, capacity, resp.Status)
	}

	// The api-server holds the client-app's one stream; fill the rest.
	for range capacity - 1 {
		openStream(t, s.APIURL+"/api/v1/events", ": connected")
	}
	resp, err = http.Get(s.APIURL + "/api/v1/events")
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusServiceUnavailable {
		resp.Body.Close() // a stream: do not read it to the end
		t.Fatalf("api-server stream %d past a cap of %d: got %s, want 503", capacity+1, capacity, resp.Status)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `"code":"unavailable"`) {
		t.Errorf("api-server stream %d past a cap of %d: got %s %s, want 503 with a JSON error", capacity+1, capacity, resp.Status, body)
	}
}

// Junk methods and unknown paths sent to the real api-server do not grow
// its request series.
func TestMetricsSeriesBoundedUnderJunk(t *testing.T) {
	t.Parallel()
	s := startStack(t, nil)
	host := strings.TrimPrefix(s.APIURL, "http://")
	conn, err := net.Dial("tcp", host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	r := bufio.NewReader(conn)
	for i := range 300 {
		fmt.Fprintf(conn, "JUNK%d /nope/%d HTTP/1.1\r\nHost: x\r\n\r\n", i, i)
		resp, err := http.ReadResponse(r, nil)
		if err != nil {
			t.Fatalf("junk request %d: %v", i, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	series := 0
	for line := range strings.Lines(scrape(t, s.APIURL+"/metrics")) {
		if strings.HasPrefix(line, "api_http_") {
			series++
		}
	}
	if series > 150 {
		t.Errorf("api_http_* series after 300 junk methods and paths: got %d, want at most 150", series)
	}
}

// Crafted, well-formed cursors sent to the real api-server fill at most
// LIST_CACHE_PAGES pages of the list cache.
func TestListCacheBoundedUnderCraftedCursors(t *testing.T) {
	t.Parallel()
	const pages = 40
	s := startStack(t, map[string]string{"LIST_CACHE_PAGES": strconv.Itoa(pages)})
	rdb, _ := testenv.Redis(t)
	for i := range 100 {
		url := fmt.Sprintf("%s/api/v1/techs?limit=100&cursor=01890a5d-ac96-774b-bcce-%012x", s.APIURL, i)
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Cache") != "MISS" {
			t.Fatalf("crafted cursor %d: got %s X-Cache %q, want 200 MISS", i, resp.Status, resp.Header.Get("X-Cache"))
		}
	}
	key := s.Env("api-server", "REDIS_CACHE") + ":{list}:pages"
	// Each page keeps its deadlines beside it (field "exp:<page>"): two fields a page.
	if n := rdb.HLen(context.Background(), key).Val() / 2; n > pages {
		t.Errorf("cached pages after 100 crafted cursors: got %d, want at most %d", n, pages)
	}
}
