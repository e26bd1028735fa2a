package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/techlist/techlist/testenv"
	"github.com/techlist/techlist/testenv/stack"
)

// apiEvents follows the api-server's own event stream, as a browser does:
// the api-server drops its in-process tier before relaying an event, so a
// client that saw tech.created there must read a list that has the tech.
// The returned function waits for the event of id.
func apiEvents(t *testing.T, apiURL string) func(id string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, apiURL+"/api/v1/events", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatalf("GET /api/v1/events: %v", err)
	}
	t.Cleanup(func() { cancel(); resp.Body.Close() })
	ids := make(chan string, 64)
	go func() {
		defer close(ids)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			data, ok := strings.CutPrefix(sc.Text(), "data: ")
			var ev struct{ Tech struct{ ID string } }
			if ok && json.Unmarshal([]byte(data), &ev) == nil && ev.Tech.ID != "" {
				ids <- ev.Tech.ID
			}
		}
	}()
	return func(id string) {
		t.Helper()
		timeout := time.After(20 * time.Second)
		for {
			select {
			case got, ok := <-ids:
				if !ok {
					t.Fatalf("the event stream ended before %s was stored", id)
				}
				if got == id {
					return
				}
			case <-timeout:
				t.Fatalf("no tech.created for %s on /api/v1/events", id)
			}
		}
	}
}

// Once the worker has seen a reader's first page cached, each write's
// settle refills it with the invalidation: the first read after
// tech.created is a HIT that lists the tech, and the worker counts one
// SELECT for it.
func TestAWriteRefillsTheFirstPage(t *testing.T) {
	t.Parallel()
	s := startStack(t, map[string]string{"TASK_COST": "0"})
	stored := apiEvents(t, s.APIURL)
	listURL := s.APIURL + "/api/v1/techs?limit=20"
	var page listBody
	getJSON(t, listURL, &page) // a reader's first page, cached

	// The first write after it: the worker only learns of the page.
	id := stack.PostTech(t, s.APIURL, "prefill one "+testenv.Suffix())
	stored(id)
	if cache := getJSON(t, listURL, &page); cache != "MISS" {
		t.Errorf("first read after the first write: got X-Cache %q, want MISS (no page known to the worker yet)", cache)
	}
	if _, ok := contains(page.Data, id); !ok {
		t.Fatalf("the first stored tech is not listed")
	}

	for i := range 2 {
		id := stack.PostTech(t, s.APIURL, "prefill more "+testenv.Suffix())
		stored(id)
		cache := getJSON(t, listURL, &page)
		if _, ok := contains(page.Data, id); !ok {
			t.Fatalf("write %d: a read after tech.created does not list the tech", i+2)
		}
		if cache != "HIT" || !page.Cached {
			t.Errorf("write %d: first read after tech.created: got X-Cache %q cached %v, want HIT true (prefilled)", i+2, cache, page.Cached)
		}
	}
	if n := metricValue(t, s.WorkerURL+"/metrics", "worker_list_prefills_total"); n != 2 {
		t.Errorf("worker_list_prefills_total: got %v, want 2", n)
	}
}
