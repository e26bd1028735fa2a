package e2e

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/techlist/techlist"
	"github.com/techlist/techlist/redis"
	"github.com/techlist/techlist/testenv"
)

// Streams mode with STREAM_PARTITIONS on a real three-master Redis
// Cluster: the partitions land on the three masters and every accepted
// tech is stored exactly once through a SIGKILLed worker; then a change
// from three partitions to one loses nothing that was waiting.
func TestStreamPartitionsOnRedisCluster(t *testing.T) {
	t.Parallel()
	addrs := testenv.RedisCluster(t)
	t.Run("three masters, a worker killed", func(t *testing.T) { partitionsUnderLoad(t, addrs) })
	t.Run("three partitions to one", func(t *testing.T) { partitionsToOne(t, addrs) })
}

// clusterStack starts the stack on the cluster in streams mode with
// STREAM_PARTITIONS=n, and returns it with a cluster client.
func clusterStack(t *testing.T, addrs []string, n int, extra map[string]string) (*Stack, *goredis.ClusterClient) {
	t.Helper()
	env := map[string]string{
		"REDIS_ADDRS":       strings.Join(addrs, ","),
		"QUEUE_MODE":        "streams",
		"STREAM_PARTITIONS": strconv.Itoa(n),
	}
	for k, v := range extra {
		env[k] = v
	}
	s := startStack(t, env)
	rdb := redis.NewClient(redis.Config{Addrs: addrs}).(*goredis.ClusterClient)
	t.Cleanup(func() { rdb.Close() })
	return s, rdb
}

// Two workers and 3,000 POSTs at 250 a second; one worker is SIGKILLed a
// third of the way in and not restarted, so the other claims what it held.
// Exactly once is checked on the text, which is not a key: every POST has
// a text of its own, so a tech stored twice would be two rows (under two
// ids) with one text; and every id answered 202 must be a row.
func partitionsUnderLoad(t *testing.T, addrs []string) {
	const posts, rate = 3000, 250
	server := testenv.MySQLConfig(t)
	before := xaddCalls(t, addrs)
	s, rdb := clusterStack(t, addrs, 3, map[string]string{"CLAIM_IDLE": "2s", "TASK_COST": "50ms"})
	s.StartReplica(t, "worker-server")
	db := openStackDB(t, s, server)
	channel := s.Env("api-server", "REDIS_CHANNEL")
	streams := redis.PartitionStreams(channel, 3)

	suffix := testenv.Suffix()
	loadDone := make(chan *loadResult, 1)
	go func() {
		loadDone <- postLoad(t.Context(), s.APIURL+"/api/v1/techs", posts, rate, func(i int) string {
			return fmt.Sprintf("partitions %s #%04d", suffix, i)
		})
	}()
	// A third of the way in, once it holds entries (handed out to it and
	// not acknowledged), the second worker dies. What it held stays
	// pending under its name until the other claims it, after CLAIM_IDLE.
	host, _ := os.Hostname()
	victim := host + "-" + strconv.Itoa(s.Pid(t, "worker-server#2")) // WORKER_NAME's default
	time.Sleep(posts / rate / 3 * time.Second)
	eventuallyWithin(t, 10*time.Second, "the second worker to hold entries", func() bool {
		return len(pendingOf(t, rdb, streams, victim)) > 0
	})
	s.Kill(t, "worker-server#2")
	pendingAtKill := pendingOf(t, rdb, streams, victim)
	var res *loadResult
	select {
	case res = <-loadDone:
	case <-time.After(2 * time.Minute):
		t.Fatal("the load did not finish within 2 minutes")
	}
	res.check(t)
	if len(res.refused) != 0 || len(res.other) != 0 {
		t.Errorf("got %d POSTs refused and %d other answers, want every one 202", len(res.refused), len(res.other))
	}

	var rows storedRows
	eventuallyWithin(t, 90*time.Second, "every accepted tech stored and the partitions empty", func() bool {
		rows = readRows(t, db)
		return len(rows.missing(res.acceptedIDs())) == 0 && backlog(t, rdb, streams) == 0
	})
	rows.verify(t, res)
	checkPendingStored(t, rows, [][]string{pendingAtKill})
	for _, stream := range streams {
		dead, err := redis.ListDeadLetters(context.Background(), rdb, stream, 10)
		if err != nil || len(dead) != 0 {
			t.Errorf("dead letters of %s: got %d, %v; want none", stream, len(dead), err)
		}
	}
	checkSpread(t, rdb, addrs, streams, before, len(res.accepted)+len(res.ambiguous), len(res.ambiguous) == 0)
	checkBacklogMetric(t, s.WorkerURL, streams)
	t.Logf("%d accepted, %d ambiguous, %d rows, %d entries pending when the worker was killed", len(res.accepted), len(res.ambiguous), rows.total, len(pendingAtKill))
}

// pendingOf returns the envelope ids handed out to consumer and not
// acknowledged, in all the streams.
func pendingOf(t *testing.T, rdb goredis.UniversalClient, streams []string, consumer string) []string {
	t.Helper()
	ctx := context.Background()
	var ids []string
	for _, stream := range streams {
		pending, err := rdb.XPendingExt(ctx, &goredis.XPendingExtArgs{Stream: stream, Group: "workers",
			Start: "-", End: "+", Count: 100_000, Consumer: consumer}).Result()
		if err != nil {
			t.Fatalf("XPENDING %s: %v", stream, err)
		}
		for _, e := range pending {
			msgs, err := rdb.XRangeN(ctx, stream, e.ID, e.ID, 1).Result()
			if err != nil || len(msgs) == 0 {
				continue // acknowledged and deleted meanwhile
			}
			env, err := techlist.DecodeEnvelope([]byte(msgs[0].Values["envelope"].(string)))
			if err != nil {
				t.Fatalf("pending entry %s: %v", e.ID, err)
			}
			ids = append(ids, env.ID)
		}
	}
	return ids
}

// backlog is the entries left in the streams.
func backlog(t *testing.T, rdb goredis.UniversalClient, streams []string) int64 {
	t.Helper()
	lens, err := redis.StreamLengths(context.Background(), rdb, streams)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, l := range lens {
		n += l
	}
	return n
}

// checkSpread checks that the three partitions are on three masters (by
// the owner of each one's slot) and that each master ran XADDs (appends
// run inside a script, and Redis counts a script's commands in INFO
// commandstats) at least as many as its partition's stream added; and
// that the partitions together added every accepted POST (exactly, when
// no answer was lost).
func checkSpread(t *testing.T, rdb *goredis.ClusterClient, addrs, streams []string, before map[string]int64, accepted int, exact bool) {
	t.Helper()
	ctx := context.Background()
	after := xaddCalls(t, addrs)
	owners := map[string]string{}
	var added int64
	for _, stream := range streams {
		master, err := rdb.MasterForKey(ctx, stream)
		if err != nil {
			t.Fatal(err)
		}
		addr := master.Options().Addr
		if other, ok := owners[addr]; ok {
			t.Errorf("partitions %s and %s are both on %s", other, stream, addr)
		}
		owners[addr] = stream
		info, err := rdb.XInfoStream(ctx, stream).Result()
		if err != nil {
			t.Fatal(err)
		}
		added += info.EntriesAdded
		calls := after[addr] - before[addr]
		slot, _ := rdb.ClusterKeySlot(ctx, stream).Result()
		t.Logf("partition %s (CLUSTER KEYSLOT %d) on %s: %d entries added, %d XADDs on the master", stream, slot, addr, info.EntriesAdded, calls)
		if info.EntriesAdded == 0 || calls < info.EntriesAdded {
			t.Errorf("master %s: %d XADDs for %d entries added to %s; want at least one, and one per entry", addr, calls, info.EntriesAdded, stream)
		}
		if share := float64(info.EntriesAdded) / float64(accepted); share < 0.2 || share > 0.47 {
			t.Errorf("partition %s took %.0f%% of the load, want about a third", stream, 100*share)
		}
	}
	if added < int64(accepted) || (exact && added != int64(accepted)) {
		t.Errorf("the partitions added %d entries for %d accepted POSTs; want one each", added, accepted)
	}
}

var xaddStat = regexp.MustCompile(`cmdstat_xadd:calls=(\d+)`)

// xaddCalls reads INFO commandstats of each node: the XADDs it ran.
func xaddCalls(t *testing.T, addrs []string) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	for _, addr := range addrs {
		node := goredis.NewClient(&goredis.Options{Addr: addr})
		info, err := node.Info(context.Background(), "commandstats").Result()
		node.Close()
		if err != nil {
			t.Fatalf("INFO commandstats of %s: %v", addr, err)
		}
		if m := xaddStat.FindStringSubmatch(info); m != nil {
			out[addr], _ = strconv.ParseInt(m[1], 10, 64)
		}
	}
	return out
}

// checkBacklogMetric checks that the worker reports the backlog of each
// partition (and of the single stream it also drains).
func checkBacklogMetric(t *testing.T, workerURL string, streams []string) {
	t.Helper()
	metrics := scrape(t, workerURL+"/metrics")
	for _, stream := range streams {
		if line := `worker_stream_backlog{partition="` + stream + `"} 0`; !strings.Contains(metrics, line) {
			t.Errorf("the worker's metrics lack %q", line)
		}
	}
}

// The api-server and the worker ran with three partitions; the worker is
// stopped and 300 techs wait in the partitions; both come back with one
// partition (the api-server now appends to the single stream). The worker
// drains the three partitions it no longer writes to, and nothing is lost.
func partitionsToOne(t *testing.T, addrs []string) {
	server := testenv.MySQLConfig(t)
	s, rdb := clusterStack(t, addrs, 3, map[string]string{"TASK_COST": "0"})
	db := openStackDB(t, s, server)
	channel := s.Env("api-server", "REDIS_CHANNEL")
	streams := redis.PartitionStreams(channel, 3)
	s.Stop(t, "worker-server")

	suffix := testenv.Suffix()
	waiting := postLoad(t.Context(), s.APIURL+"/api/v1/techs", 300, 300, func(i int) string {
		return fmt.Sprintf("three to one %s #%03d", suffix, i)
	})
	waiting.check(t)
	if len(waiting.accepted) != 300 {
		t.Fatalf("with three partitions: %d of 300 POSTs accepted, want all", len(waiting.accepted))
	}
	lens, err := redis.StreamLengths(context.Background(), rdb, streams)
	if err != nil {
		t.Fatal(err)
	}
	for p, n := range lens {
		if n == 0 {
			t.Errorf("partition %d holds nothing of the 300 waiting: %v", p, lens)
		}
	}
	var st struct{ Waiting int64 }
	getJSON(t, s.APIURL+"/api/v1/stats", &st)
	if st.Waiting != 300 {
		t.Errorf("stats with three partitions: waiting %d, want 300 (the sum of %v)", st.Waiting, lens)
	}

	one := map[string]string{"STREAM_PARTITIONS": "1"}
	s.RestartWith(t, "api-server", one)
	s.RestartWith(t, "worker-server", one)
	after := postLoad(t.Context(), s.APIURL+"/api/v1/techs", 30, 100, func(i int) string {
		return fmt.Sprintf("three to one %s after #%02d", suffix, i)
	})
	after.check(t)
	for text, id := range after.accepted {
		waiting.accepted[text] = id
	}
	var rows storedRows
	eventuallyWithin(t, 60*time.Second, "every accepted tech stored", func() bool {
		rows = readRows(t, db)
		return len(rows.missing(waiting.acceptedIDs())) == 0
	})
	if lost := rows.verify(t, waiting); lost != 0 || rows.total != 330 {
		t.Errorf("got %d rows, %d lost; want the 330 accepted", rows.total, lost)
	}
	if n := backlog(t, rdb, append(streams, channel)); n != 0 {
		t.Errorf("the streams still hold %d entries", n)
	}
	testenv.Eventually(t, "stats to show nothing waiting", func() bool {
		st.Waiting = -1
		getJSON(t, s.APIURL+"/api/v1/stats", &st)
		return st.Waiting == 0
	})
}

// eventuallyWithin calls check every 250 ms until it returns true, failing
// the test after limit: for checks that read a whole table.
func eventuallyWithin(t *testing.T, limit time.Duration, what string, check func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !check() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", limit, what)
		}
		time.Sleep(250 * time.Millisecond)
	}
}
