package e2e

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/techlist/techlist/testenv"
)

// The whole flow through a real three-master Redis Cluster, in both queue
// modes: post, see the worker store it, read it as MISS then HIT.
func TestFlowOnRedisCluster(t *testing.T) {
	t.Parallel()
	addrs := testenv.RedisCluster(t)
	for _, mode := range []string{"pubsub", "streams"} {
		t.Run(mode, func(t *testing.T) {
			s := startStack(t, map[string]string{
				"REDIS_ADDRS": strings.Join(addrs, ","),
				"QUEUE_MODE":  mode,
				"TASK_COST":   "0",
			})
			stored := watchStored(t, s)
			text := "cluster " + mode + " " + testenv.Suffix()
			resp, err := http.Post(s.APIURL+"/api/v1/techs", "application/json", strings.NewReader(`{"text":"`+text+`"}`))
			if err != nil {
				t.Fatal(err)
			}
			var created struct{ ID string }
			json.NewDecoder(resp.Body).Decode(&created)
			resp.Body.Close()
			if resp.StatusCode != http.StatusAccepted {
				t.Fatalf("POST: got %s, want 202", resp.Status)
			}
			stored(created.ID)
			var first listBody
			cache := getJSON(t, s.APIURL+"/api/v1/techs", &first)
			if _, ok := contains(first.Data, created.ID); !ok {
				t.Fatal("the stored tech is not listed")
			}
			if cache != "MISS" {
				t.Errorf("first read after the write: got X-Cache %q, want MISS", cache)
			}
			var second listBody
			if got := getJSON(t, s.APIURL+"/api/v1/techs", &second); got != "HIT" {
				t.Errorf("next read: got X-Cache %q, want HIT", got)
			}
			if tech, _ := contains(second.Data, created.ID); tech.Text != text {
				t.Errorf("stored %q, want %q", tech.Text, text)
			}
		})
	}
}
