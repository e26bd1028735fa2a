package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/techlist/techlist/testenv"
	"github.com/techlist/techlist/testenv/stack"
)

// TestServicesOnTheEmbeddedStack builds the three services and runs them
// against devstack, in each queue mode, as make dev does when no Redis or
// MySQL answers: the migrations run, a tech posted through the client-app's
// form is stored by the worker and listed by the API (first a MISS, then a
// HIT), and the page shows it. At the end each service must stop cleanly.
func TestServicesOnTheEmbeddedStack(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the three services; skipped with -short")
	}
	bin := serviceBinaries(t)
	// One mode after the other, never in parallel: go-mysql-server keeps
	// process-wide state (its status and system variables), so two
	// embedded MySQL servers in one process race. devstack runs one.
	for _, mode := range []string{"pubsub", "streams"} {
		t.Run(mode, func(t *testing.T) {
			redisAddr, mysqlAddr := freeAddr(t), freeAddr(t)
			startDevstack(t, "-redis", redisAddr, "-mysql", mysqlAddr)
			mysqlHost, mysqlPort, _ := net.SplitHostPort(mysqlAddr)
			s := stack.Services(t, bin, map[string]string{
				"MYSQL_HOST":  mysqlHost,
				"MYSQL_PORT":  mysqlPort,
				"REDIS_ADDRS": redisAddr,
				"QUEUE_MODE":  mode,
				"TASK_COST":   "20ms",
				"CLAIM_IDLE":  "2s",
			}, map[string]string{"STARTUP_TIMEOUT": "20s"})
			t.Cleanup(func() {
				if t.Failed() {
					t.Logf("--- the embedded Redis's queue state ---\n%s", queueState(redisAddr))
				}
			})

			text := "embedded " + mode + " " + strconv.FormatInt(time.Now().UnixNano(), 36)
			noRedirect := &http.Client{
				Timeout:       10 * time.Second,
				CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
			}
			resp, err := noRedirect.PostForm(s.ClientURL+"/techs", url.Values{"text": {text}})
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusSeeOther {
				t.Fatalf("POST /techs on the client-app: got %s, want 303", resp.Status)
			}
			queued, _ := url.Parse(resp.Header.Get("Location"))
			id := queued.Query().Get("queued")
			if id == "" {
				t.Fatalf("the redirect %q names no queued id", resp.Header.Get("Location"))
			}

			// The first list that shows the tech comes from MySQL, the next
			// from the cache.
			listURL := s.APIURL + "/api/v1/techs?limit=10"
			var first string
			testenv.Eventually(t, "the tech to be listed", func() bool {
				var found bool
				first, found = listed(t, listURL, id, text)
				return found
			})
			if first != "MISS" {
				t.Errorf("first list showing the tech: X-Cache %q, want MISS", first)
			}
			if again, found := listed(t, listURL, id, text); !found || again != "HIT" {
				t.Errorf("the list again: X-Cache %q (tech listed: %v), want HIT with the tech", again, found)
			}
			// The worker has seen the first page cached: by the second
			// write after it at the latest, its invalidation refills the
			// page (the script on the embedded Redis too), so the first
			// list showing the tech is a HIT.
			for i := range 2 {
				text := fmt.Sprintf("%s more %d", text, i)
				id := stack.PostTech(t, s.APIURL, text)
				var first string
				testenv.Eventually(t, "the tech to be listed", func() bool {
					var found bool
					first, found = listed(t, listURL, id, text)
					return found
				})
				if i == 1 && first != "HIT" {
					t.Errorf("first list showing a tech written after the page was cached: X-Cache %q, want HIT (refilled by the worker)", first)
				}
			}

			var tech struct{ ID, Text, Priority string }
			if code := getJSON(t, s.APIURL+"/api/v1/techs/"+id, &tech); code != http.StatusOK || tech.Text != text || tech.Priority == "" {
				t.Errorf("GET /api/v1/techs/%s: got %d %+v, want 200 with the text and a priority", id, code, tech)
			}
			if page := get(t, s.ClientURL+"/"); !strings.Contains(page, text) {
				t.Errorf("the client-app's page does not show %q", text)
			}

			if mode == "pubsub" {
				// The 503 when no worker listens rests on PUBLISH counting
				// its receivers, which the embedded Redis must do too.
				s.Stop(t, "worker-server")
				resp, err := http.Post(s.APIURL+"/api/v1/techs", "application/json", strings.NewReader(`{"text":"nobody listens"}`))
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusServiceUnavailable {
					t.Errorf("POST with no worker subscribed: got %s, want 503", resp.Status)
				}
			}
		})
	}
}

// listed GETs the list at u and reports its X-Cache header and whether the
// tech id with text is in it.
func listed(t *testing.T, u, id, text string) (string, bool) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var page struct {
		Data []struct{ ID, Text string }
	}
	if err := json.NewDecoder(resp.Body).Decode(&page); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s, %v", u, resp.Status, err)
	}
	for _, d := range page.Data {
		if d.ID == id && d.Text == text {
			return resp.Header.Get("X-Cache"), true
		}
	}
	return resp.Header.Get("X-Cache"), false
}

func getJSON(t *testing.T, u string, v any) int {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: decode: %v", u, err)
	}
	return resp.StatusCode
}

func get(t *testing.T, u string) string {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s, %v", u, resp.Status, err)
	}
	return string(b)
}

var built struct {
	once sync.Once
	dir  string
	err  error
}

// serviceBinaries builds the three services once, from the repository
// root (the folder of go.work), into a folder removed after the tests.
func serviceBinaries(t *testing.T) string {
	t.Helper()
	built.once.Do(func() {
		built.dir, built.err = os.MkdirTemp("", "devstack-test-bin-")
		if built.err == nil {
			built.err = stack.Build(context.Background(), built.dir, true, "./api-server", "./worker-server", "./client-app")
		}
	})
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.dir
}

func TestMain(m *testing.M) {
	code := m.Run()
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
	os.Exit(code)
}

// queueState describes what the embedded Redis holds of the queue (the
// stream, its group and what is pending), so a failure says whether the
// tech was appended, read, or acknowledged.
func queueState(addr string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rdb := goredis.NewClient(&goredis.Options{Addr: addr})
	defer rdb.Close()
	var b strings.Builder
	for _, cmd := range [][]any{
		{"XLEN", "channel1"}, {"XINFO", "GROUPS", "channel1"}, {"XINFO", "CONSUMERS", "channel1", "workers"},
		{"XPENDING", "channel1", "workers", "-", "+", "10"}, {"XRANGE", "channel1", "-", "+", "COUNT", "10"},
		{"PUBSUB", "CHANNELS"}, {"KEYS", "*"},
	} {
		v, err := rdb.Do(ctx, cmd...).Result()
		fmt.Fprintf(&b, "%v: %v %v\n", cmd, v, err)
	}
	return b.String()
}
