package e2e

import (
	"fmt"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/techlist/techlist/testenv"
	"github.com/techlist/techlist/testenv/stack"
)

// Two api-servers and two workers on the same Redis and MariaDB, in
// streams mode. After each write, whichever replica serves the read shows
// it (each replica's in-process tier is dropped by the worker's event; the
// tier's TTL, 1s, is the hard bound if an event were lost) and never goes
// back to a list without it; and the two workers share the load.
func TestReplicas(t *testing.T) {
	t.Parallel()
	s := startStack(t, map[string]string{"QUEUE_MODE": "streams", "TASK_COST": "5ms"})
	apis := []string{s.APIURL, s.StartReplica(t, "api-server")}
	workers := []string{s.WorkerURL, s.StartReplica(t, "worker-server")}
	stored := watchStored(t, s)

	// Warm both replicas' caches, so a stale page would be there to serve.
	for _, api := range apis {
		var l listBody
		getJSON(t, api+"/api/v1/techs", &l)
		getJSON(t, api+"/api/v1/techs", &l)
	}
	staleReads := 0
	for i := range 10 {
		text := fmt.Sprintf("replica write %d %s", i, testenv.Suffix())
		id := stack.PostTech(t, apis[i%2], text)
		stored(id)
		for r, api := range apis {
			fresh := false
			deadline := time.Now().Add(5 * time.Second)
			for !fresh {
				var l listBody
				getJSON(t, api+"/api/v1/techs", &l)
				_, fresh = contains(l.Data, id)
				if !fresh {
					staleReads++
					if time.Now().After(deadline) {
						t.Fatalf("replica %d still lists no %s 5s after it was stored", r+1, id)
					}
					time.Sleep(5 * time.Millisecond)
				}
			}
			// Once fresh, never back: no stale fill after the invalidation.
			for range 5 {
				var l listBody
				getJSON(t, api+"/api/v1/techs", &l)
				if _, ok := contains(l.Data, id); !ok {
					t.Fatalf("replica %d listed %s, then a read without it", r+1, id)
				}
			}
		}
	}
	t.Logf("reads that did not yet show a stored write (the event still on its way): %d", staleReads)

	// The load: both workers store some of it.
	var ids []string
	for i := range 200 {
		ids = append(ids, stack.PostTech(t, apis[i%2], fmt.Sprintf("shared load %d", i)))
		time.Sleep(2 * time.Millisecond)
	}
	for _, id := range ids {
		stored(id)
	}
	total := 0
	for w, url := range workers {
		n := storedCount(t, url)
		total += n
		t.Logf("worker %d stored %d rows", w+1, n)
		if n == 0 {
			t.Errorf("worker %d stored nothing: the load was not shared", w+1)
		}
	}
	if total < 210 {
		t.Errorf("the workers stored %d rows in all, want at least 210", total)
	}
}

var storedMetric = regexp.MustCompile(`(?m)^worker_messages_total\{result="stored"\} (\d+)`)

func storedCount(t *testing.T, workerURL string) int {
	t.Helper()
	m := storedMetric.FindStringSubmatch(scrape(t, workerURL+"/metrics"))
	if m == nil {
		t.Fatalf("no stored count in %s/metrics", workerURL)
	}
	n, _ := strconv.Atoi(m[1])
	return n
}
