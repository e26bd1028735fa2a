package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	goredis "github.com/redis/go-redis/v9"
	"github.com/techlist/techlist"
	"github.com/techlist/techlist/mysql"
	"github.com/techlist/techlist/redis"
	"github.com/techlist/techlist/testenv"
)

// The fault runs post thousands of techs while workers are killed and the
// connections to Redis and MySQL are cut, then count what was stored.
// They take a minute or more, so they run only when FAULT_RUNS=1 (.ci/run
// sets it).
func requireFaultRuns(t *testing.T) {
	t.Helper()
	if os.Getenv("FAULT_RUNS") != "1" {
		t.Skip("fault run skipped: it posts thousands of techs while killing workers and cutting connections; set FAULT_RUNS=1 to run it")
	}
}

// TestFaultRunStreams: with QUEUE_MODE=streams, every POST answered 202 is
// stored exactly once, and nothing refused is stored, through SIGKILLed
// workers and cut connections to Redis and to MySQL.
func TestFaultRunStreams(t *testing.T) {
	requireFaultRuns(t)
	const (
		posts = 5000
		rate  = 250 // POSTs a second
	)
	server := testenv.MySQLConfig(t) // where MySQL is, for the proxy and for counting
	redisProxy := newFaultProxy(t, "redis", testenv.RedisAddr())
	mysqlProxy := newFaultProxy(t, "mysql", fmt.Sprintf("%s:%d", server.Host, server.Port))
	s := startStack(t, map[string]string{
		"QUEUE_MODE":     "streams",
		"REDIS_ADDRS":    redisProxy.Addr,
		"MYSQL_HOST":     mysqlProxy.Host,
		"MYSQL_PORT":     strconv.Itoa(mysqlProxy.Port),
		"CLAIM_IDLE":     "2s",
		"TASK_COST":      "2ms",
		"STREAM_MAX_LEN": "2000",
	})
	db := openStackDB(t, s, server)
	rdb := redis.NewClient(redis.Config{Addrs: []string{testenv.RedisAddr()}}) // not through the proxy
	defer rdb.Close()
	stream := s.Env("api-server", "REDIS_CHANNEL")
	const group = "workers" // STREAM_GROUP's default

	events := countEvents(t, rdb, redis.EventsChannel(stream))
	suffix := testenv.Suffix()
	start := time.Now()
	loadDone := make(chan *loadResult, 1)
	go func() {
		loadDone <- postLoad(t.Context(), s.APIURL+"/api/v1/techs", posts, rate, func(i int) string {
			return fmt.Sprintf("fault run streams %s #%04d", suffix, i)
		})
	}()

	// The faults, while the load runs (about 20 seconds of it). Before each
	// kill the test notes the envelopes the group has handed out and not
	// acknowledged: the ones the next worker must claim and store.
	kills := 0
	var pendingAtKills [][]string
	killWorker := func() {
		pendingAtKills = append(pendingAtKills, pendingEnvelopes(t, rdb, stream, group))
		s.Kill(t, "worker-server")
		kills++
	}
	pause := func(d time.Duration) { time.Sleep(d) }

	pause(2 * time.Second)
	killWorker() // a worker crashes mid-batch; a new one claims its entries
	s.Restart(t, "worker-server")

	pause(2 * time.Second)
	redisProxy.Cut() // the api-server refuses, the worker's reads and acks fail
	pause(2 * time.Second)
	redisProxy.Restore(t)

	pause(time.Second)
	killWorker() // soon after the outage, which failed some acks
	s.Restart(t, "worker-server")

	pause(2 * time.Second)
	mysqlProxy.Cut() // the worker's inserts fail and are retried
	pause(1500 * time.Millisecond)
	killWorker() // and it dies while retrying: its entries stay pending
	pause(1500 * time.Millisecond)
	mysqlProxy.Restore(t)
	s.Restart(t, "worker-server")

	select {
	case res := <-loadDone: // done already
		loadDone <- res
	default:
		pause(time.Second)
		killWorker() // once more under steady load
		s.Restart(t, "worker-server")
	}
	var res *loadResult
	select {
	case res = <-loadDone:
	case <-time.After(2 * time.Minute):
		t.Fatal("the load did not finish within 2 minutes")
	}
	loadTime := time.Since(start)
	res.check(t)

	// Everything is restored: wait until every accepted tech is stored and
	// the stream is empty (the workers delete each entry once it is stored,
	// so nothing more can be written after that).
	var rows storedRows
	var backlog int64
	deadline := time.Now().Add(90 * time.Second)
	for {
		rows = readRows(t, db)
		var err error
		backlog, err = rdb.XLen(context.Background(), stream).Result()
		if err != nil {
			t.Fatalf("XLEN %s: %v", stream, err)
		}
		if len(rows.missing(res.acceptedIDs())) == 0 && backlog == 0 {
			break
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	waited := time.Since(start) - loadTime
	dead, err := redis.ListDeadLetters(context.Background(), rdb, stream, 10000)
	if err != nil {
		t.Errorf("list dead letters: %v", err)
	}

	lost := rows.verify(t, res)
	// Most POSTs are accepted: the Redis cut refuses about two seconds of
	// them, and STREAM_MAX_LEN is not reached. A run where most got 503
	// proves nothing about what 202 promises.
	if minimum := posts * 80 / 100; len(res.accepted) < minimum {
		t.Errorf("got %d of %d POSTs accepted, want at least %d (80%%)", len(res.accepted), posts, minimum)
	}
	pendingStored := checkPendingStored(t, rows, pendingAtKills)
	if backlog != 0 {
		t.Errorf("the stream %s still holds %d entries 90s after the load (want 0: each is deleted once stored)", stream, backlog)
	}
	for i, d := range dead {
		if i == 10 {
			break
		}
		t.Errorf("dead letter %s (entry %s, %s attempts, by %s): %s", d.ID, d.Entry, d.Attempts, d.Consumer, d.Error)
	}
	if kills < 3 || redisProxy.Cuts < 1 || mysqlProxy.Cuts < 1 {
		t.Errorf("faults: got %d worker kills, %d Redis cuts, %d MySQL cuts; want at least 3, 1, 1", kills, redisProxy.Cuts, mysqlProxy.Cuts)
	}
	summary := fmt.Sprintf("fault run (streams): accepted=%d refused=%d ambiguous=%d stored=%d duplicates=%d lost=%d pending_at_kills=%d worker_kills=%d redis_cuts=%d mysql_cuts=%d",
		len(res.accepted), len(res.refused), len(res.ambiguous), rows.total, rows.duplicates(), lost, pendingStored, kills, redisProxy.Cuts, mysqlProxy.Cuts)
	t.Log(summary)
	fmt.Println(summary)
	pending := make([]int, len(pendingAtKills))
	for i, ids := range pendingAtKills {
		pending[i] = len(ids)
	}
	announced, twice := events.counts()
	t.Logf("load %.1fs at a target of %d/s, then %.1fs until stored and drained; entries pending when each worker was killed %v; other answers %d, dead letters %d; tech.created events for %d ids, %d of them announced twice or more (stored again after a redelivery: one row, so not a duplicate)",
		loadTime.Seconds(), rate, waited.Seconds(), pending, len(res.other), len(dead), announced, twice)
}

// pendingEnvelopes returns the envelope ids of the entries the group has
// handed out and not acknowledged.
func pendingEnvelopes(t *testing.T, rdb goredis.UniversalClient, stream, group string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	pending, err := rdb.XPendingExt(ctx, &goredis.XPendingExtArgs{Stream: stream, Group: group, Start: "-", End: "+", Count: 100_000}).Result()
	if err != nil {
		t.Errorf("XPENDING %s %s: %v", stream, group, err)
		return nil
	}
	cmds := make([]*goredis.XMessageSliceCmd, len(pending))
	rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i, e := range pending {
			cmds[i] = p.XRangeN(ctx, stream, e.ID, e.ID, 1)
		}
		return nil
	})
	var ids []string
	for _, cmd := range cmds {
		msgs, err := cmd.Result()
		if err != nil || len(msgs) == 0 {
			continue // acknowledged and deleted meanwhile: stored
		}
		payload, _ := msgs[0].Values["envelope"].(string)
		env, err := techlist.DecodeEnvelope([]byte(payload))
		if err != nil {
			t.Errorf("pending entry %s: %v", msgs[0].ID, err)
			continue
		}
		ids = append(ids, env.ID)
	}
	return ids
}

// checkPendingStored checks that every envelope pending at a kill was
// stored in the end, and that some were: a run in which no kill caught an
// entry in flight would check nothing. It returns how many it checked.
func checkPendingStored(t *testing.T, rows storedRows, pendingAtKills [][]string) int {
	t.Helper()
	checked, missing := 0, 0
	for kill, ids := range pendingAtKills {
		for _, id := range ids {
			checked++
			if _, ok := rows.ids[id]; !ok {
				missing++
				if missing <= 10 {
					t.Errorf("envelope %s, pending when worker kill %d happened, was not stored", id, kill+1)
				}
			}
		}
	}
	if missing > 10 {
		t.Errorf("... and %d more envelopes pending at a kill not stored", missing-10)
	}
	if checked == 0 {
		t.Errorf("no entry was pending at any of the %d worker kills: the run did not exercise a crash mid-work", len(pendingAtKills))
	}
	return checked
}

// eventCounter counts the tech.created events per tech id.
type eventCounter struct {
	mu    sync.Mutex
	perID map[string]int
}

// countEvents counts the events on channel until the test ends. Events
// are only informative: pub/sub keeps none published during a Redis cut.
func countEvents(t *testing.T, rdb goredis.UniversalClient, channel string) *eventCounter {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	sub, err := redis.SubscribeEvents(ctx, rdb, channel)
	if err != nil {
		cancel()
		t.Fatalf("subscribe to %s: %v", channel, err)
	}
	c := &eventCounter{perID: map[string]int{}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			ev, err := sub.Receive(ctx)
			if err != nil {
				sleepCtx(ctx, 10*time.Millisecond)
				continue
			}
			c.mu.Lock()
			c.perID[ev.Tech.ID]++
			c.mu.Unlock()
		}
	}()
	t.Cleanup(func() { cancel(); sub.Close(); <-done })
	return c
}

// counts returns how many ids were announced, and how many more than once.
func (c *eventCounter) counts() (ids, twice int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, n := range c.perID {
		if n > 1 {
			twice++
		}
	}
	return len(c.perID), twice
}

func sleepCtx(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// TestStreamsOutageLongerThanClaimIdle: two workers in streams mode, and
// MySQL cut for several CLAIM_IDLEs while each retries its entries. A
// worker alive and retrying keeps its entries: the other does not claim
// them, no claim counts as an attempt, nothing is dead-lettered, and
// everything accepted is stored once MySQL is back.
func TestStreamsOutageLongerThanClaimIdle(t *testing.T) {
	t.Parallel()
	server := testenv.MySQLConfig(t)
	mysqlProxy := newFaultProxy(t, "mysql", fmt.Sprintf("%s:%d", server.Host, server.Port))
	s := startStack(t, map[string]string{
		"QUEUE_MODE":     "streams",
		"MYSQL_HOST":     mysqlProxy.Host,
		"MYSQL_PORT":     strconv.Itoa(mysqlProxy.Port),
		"CLAIM_IDLE":     "1s",
		"MAX_DELIVERIES": "2",
		"TASK_COST":      "0",
	})
	s.StartReplica(t, "worker-server")
	db := openStackDB(t, s, server)
	rdb := redis.NewClient(redis.Config{Addrs: []string{testenv.RedisAddr()}})
	defer rdb.Close()
	stream := s.Env("api-server", "REDIS_CHANNEL")

	mysqlProxy.Cut()
	var ids []string
	for i := range 20 {
		ids = append(ids, postAccepted(t, s.APIURL+"/api/v1/techs", fmt.Sprintf("outage %s #%02d", testenv.Suffix(), i)))
	}
	time.Sleep(5 * time.Second) // the outage: five CLAIM_IDLEs
	mysqlProxy.Restore(t)

	testenv.Eventually(t, "every accepted tech stored", func() bool {
		return len(readRows(t, db).missing(ids)) == 0
	})
	dead, err := redis.ListDeadLetters(context.Background(), rdb, stream, 100)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range dead {
		t.Errorf("dead letter %s (entry %s, %s attempts, by %s): %s; want none, the entry was stored", d.ID, d.Entry, d.Attempts, d.Consumer, d.Error)
	}
	if rows := readRows(t, db); rows.duplicates() != 0 || rows.total != len(ids) {
		t.Errorf("got %d rows, %d duplicates; want %d rows", rows.total, rows.duplicates(), len(ids))
	}
}

// TestFaultRunPubSub: in pubsub mode, with no worker listening every POST
// is refused and nothing is stored; with the worker back, every POST
// answered 202 is stored.
func TestFaultRunPubSub(t *testing.T) {
	requireFaultRuns(t)
	server := testenv.MySQLConfig(t)
	s := startStack(t, map[string]string{"TASK_COST": "2ms"})
	db := openStackDB(t, s, server)
	rdb := redis.NewClient(redis.Config{Addrs: []string{testenv.RedisAddr()}})
	defer rdb.Close()
	channel := s.Env("api-server", "REDIS_CHANNEL")
	suffix := testenv.Suffix()

	// No worker: nobody receives the messages, so nothing is accepted.
	s.Stop(t, "worker-server")
	stopped := postLoad(t.Context(), s.APIURL+"/api/v1/techs", 200, 200, func(i int) string {
		return fmt.Sprintf("fault run pubsub %s stopped #%03d", suffix, i)
	})
	stopped.check(t)
	if len(stopped.refused) != 200 {
		t.Errorf("with the worker stopped: got %d of 200 POSTs answered 503 (%d 202, %d others, %d transport errors), want all",
			len(stopped.refused), len(stopped.accepted), len(stopped.other), len(stopped.ambiguous))
	}
	time.Sleep(time.Second)
	if rows := readRows(t, db); rows.total != 0 {
		t.Errorf("with the worker stopped: got %d rows stored, want 0", rows.total)
	}

	// The worker back, subscribed: everything accepted is stored.
	s.Restart(t, "worker-server")
	testenv.Eventually(t, "the restarted worker to subscribe", func() bool {
		n, err := rdb.PubSubNumSub(context.Background(), channel).Result()
		return err == nil && n[channel] > 0
	})
	running := postLoad(t.Context(), s.APIURL+"/api/v1/techs", 500, 250, func(i int) string {
		return fmt.Sprintf("fault run pubsub %s running #%03d", suffix, i)
	})
	running.check(t)
	if len(running.refused) != 0 {
		t.Errorf("with the worker running: got %d POSTs answered 503, want 0", len(running.refused))
	}
	var rows storedRows
	deadline := time.Now().Add(60 * time.Second)
	for {
		rows = readRows(t, db)
		if len(rows.missing(running.acceptedIDs())) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond) // anything stored late that should not be
	rows = readRows(t, db)
	lost := rows.verify(t, running)
	if rows.total != len(running.accepted) {
		t.Errorf("got %d rows, want exactly the %d accepted", rows.total, len(running.accepted))
	}
	summary := fmt.Sprintf("fault run (pubsub): worker stopped: posted=%d refused=%d stored=0; worker running: accepted=%d refused=%d ambiguous=%d stored=%d duplicates=%d lost=%d",
		len(stopped.outcomes), len(stopped.refused), len(running.accepted), len(running.refused), len(running.ambiguous),
		rows.total, rows.duplicates(), lost)
	t.Log(summary)
	fmt.Println(summary)
}

// TestReadsSurviveRedisOutage: with Redis cut, reads come from MySQL
// (X-Cache: BYPASS) and writes are refused with 503; once Redis is back,
// without restarting anything, reads are cached again and writes accepted.
func TestReadsSurviveRedisOutage(t *testing.T) {
	t.Parallel()
	redisProxy := newFaultProxy(t, "redis", testenv.RedisAddr())
	s := startStack(t, map[string]string{"REDIS_ADDRS": redisProxy.Addr, "TASK_COST": "0"})
	list := s.APIURL + "/api/v1/techs"

	before := postAccepted(t, list, "before the outage "+testenv.Suffix())
	var page listBody
	testenv.Eventually(t, "the tech in the list", func() bool {
		page = listBody{}
		cache := getJSON(t, list, &page)
		_, ok := contains(page.Data, before)
		return ok && cache == "MISS"
	})
	if cache := getJSON(t, list, &listBody{}); cache != "HIT" {
		t.Errorf("second read before the outage: got X-Cache %q, want HIT", cache)
	}

	redisProxy.Cut()
	// The in-process tier may answer for up to LOCAL_CACHE_TTL (1s) after
	// its last Redis read, and is dropped as soon as the event
	// subscription breaks; after that, reads come from MySQL.
	deadline := time.Now().Add(10 * time.Second)
	for {
		page = listBody{}
		cache := getJSON(t, list, &page)
		if cache == "BYPASS" && !page.Cached {
			break
		}
		if cache != "HIT" || time.Now().After(deadline) {
			t.Fatalf("read with Redis cut: got X-Cache %q cached %v, want BYPASS false (after at most a second of in-process HITs)", cache, page.Cached)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, ok := contains(page.Data, before); !ok {
		t.Errorf("read with Redis cut: the stored tech %s is missing", before)
	}
	var one techlist.Tech
	getJSON(t, list+"/"+before, &one)
	if one.ID != before {
		t.Errorf("GET one tech with Redis cut: got %+v, want id %s", one, before)
	}
	status, body := postText(t, list, "during the outage "+testenv.Suffix())
	var e struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(body, &e); status != http.StatusServiceUnavailable || err != nil || e.Error.Code != "unavailable" || e.Error.Message == "" {
		t.Errorf("POST with Redis cut: got %d %s, want 503 with a JSON error coded unavailable", status, body)
	}
	resp, err := http.Get(s.APIURL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	ready, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !bytes.Contains(ready, []byte("redis")) {
		t.Errorf("/readyz with Redis cut: got %s %s, want 503 naming redis", resp.Status, ready)
	}

	redisProxy.Restore(t)
	testenv.Eventually(t, "reads to be cached again", func() bool {
		cache := getJSON(t, list, &listBody{})
		return cache == "MISS" || cache == "HIT"
	})
	var after string
	testenv.Eventually(t, "a POST to be accepted again (the worker back on the channel)", func() bool {
		status, body := postText(t, list, "after the outage "+testenv.Suffix())
		var a queued
		if status != http.StatusAccepted || json.Unmarshal(body, &a) != nil {
			return false
		}
		after = a.ID
		return true
	})
	// A MISS, or a HIT when the worker refilled the first page with its
	// invalidation (it learnt of the page from the settle before the
	// outage): either way the page lists the tech.
	testenv.Eventually(t, "the tech posted after the outage in the list", func() bool {
		page = listBody{}
		cache := getJSON(t, list, &page)
		_, ok := contains(page.Data, after)
		return ok && (cache == "MISS" || cache == "HIT")
	})
	if cache := getJSON(t, list, &listBody{}); cache != "HIT" {
		t.Errorf("second read after the outage: got X-Cache %q, want HIT", cache)
	}
}

type queued struct {
	ID     string `json:"id"`
	Status string `json:"status"`
}

// postText sends one tech as JSON and returns the answer's status and body.
func postText(t *testing.T, url, text string) (int, []byte) {
	t.Helper()
	b, _ := json.Marshal(map[string]string{"text": text})
	resp, err := http.Post(url, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, body
}

// postAccepted posts one tech, which must be accepted, and returns its id.
func postAccepted(t *testing.T, url, text string) string {
	t.Helper()
	status, body := postText(t, url, text)
	var a queued
	if err := json.Unmarshal(body, &a); status != http.StatusAccepted || err != nil || !techlist.ValidID(a.ID) {
		t.Fatalf("POST %s: got %d %s, want 202 with an id", url, status, body)
	}
	return a.ID
}

// outcome is what became of one POST of the load.
type outcome struct {
	text   string
	status int    // 0 after a transport error
	id     string // of a 202
	err    error
	body   string
}

// loadResult sorts the outcomes by text: every text is posted once.
type loadResult struct {
	outcomes  []outcome
	accepted  map[string]string // text -> id, answered 202
	refused   map[string]bool   // answered 503
	ambiguous map[string]bool   // transport error: it may or may not have been accepted
	other     map[string]outcome
}

// postLoad posts n techs, text(i) each, at rate a second (a ticker paces
// the sends; a few goroutines send, so a slow answer slows the rate only
// when all of them wait), and returns once every POST was answered, or
// early when ctx ends (the test is over).
func postLoad(ctx context.Context, url string, n, rate int, text func(i int) string) *loadResult {
	const senders = 32
	client := &http.Client{
		Timeout:   10 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: senders, IdleConnTimeout: time.Minute},
	}
	defer client.CloseIdleConnections()
	jobs := make(chan int)
	go func() {
		defer close(jobs)
		tick := time.NewTicker(time.Second / time.Duration(rate))
		defer tick.Stop()
		for i := range n {
			select {
			case <-tick.C:
			case <-ctx.Done():
				return
			}
			jobs <- i
		}
	}()
	out := make([]outcome, n)
	var wg sync.WaitGroup
	for range senders {
		wg.Go(func() {
			for i := range jobs {
				out[i] = postOne(client, url, text(i))
			}
		})
	}
	wg.Wait()

	r := &loadResult{outcomes: out, accepted: map[string]string{}, refused: map[string]bool{},
		ambiguous: map[string]bool{}, other: map[string]outcome{}}
	for _, o := range out {
		switch {
		case o.text == "": // not sent: ctx ended
		case o.err != nil:
			r.ambiguous[o.text] = true
		case o.status == http.StatusAccepted && techlist.ValidID(o.id):
			r.accepted[o.text] = o.id
		case o.status == http.StatusServiceUnavailable && strings.Contains(o.body, "may or may not have been queued"):
			// Redis did not confirm and the api-server says so: as uncertain
			// as a transport error.
			r.ambiguous[o.text] = true
		case o.status == http.StatusServiceUnavailable:
			r.refused[o.text] = true
		default:
			r.other[o.text] = o
		}
	}
	return r
}

func postOne(client *http.Client, url, text string) outcome {
	o := outcome{text: text}
	b, _ := json.Marshal(map[string]string{"text": text})
	resp, err := client.Post(url, "application/json", bytes.NewReader(b))
	if err != nil {
		o.err = err
		return o
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	o.status, o.body = resp.StatusCode, string(body)
	if err != nil {
		o.err = fmt.Errorf("read the %d answer: %w", resp.StatusCode, err)
		return o
	}
	if resp.StatusCode == http.StatusAccepted {
		var a queued
		json.Unmarshal(body, &a)
		o.id = a.ID
	}
	return o
}

// check reports the answers that were neither 202 nor 503: a 5xx other
// than 503 fails the test, anything else is logged.
func (r *loadResult) check(t *testing.T) {
	t.Helper()
	shown := 0
	for _, o := range r.outcomes {
		if r.ambiguous[o.text] && shown < 5 {
			shown++
			t.Logf("POST %q: transport error (counted ambiguous): %v", o.text, o.err)
		}
	}
	if len(r.ambiguous) > 0 {
		t.Logf("%d POSTs failed in transport (counted ambiguous)", len(r.ambiguous))
	}
	reasons := map[string]int{}
	for _, o := range r.outcomes {
		if r.refused[o.text] {
			var e struct {
				Error struct {
					Message string `json:"message"`
				} `json:"error"`
			}
			json.Unmarshal([]byte(o.body), &e)
			reasons[e.Error.Message]++
		}
	}
	for reason, n := range reasons {
		t.Logf("%d POSTs refused with 503 %q", n, reason)
	}
	bad := 0
	for _, o := range r.other {
		if o.status >= 500 {
			bad++
			if bad <= 10 {
				t.Errorf("POST %q: got %d %s, want 202 or 503", o.text, o.status, o.body)
			}
		} else {
			t.Logf("POST %q: got %d %s (neither 202 nor 503)", o.text, o.status, o.body)
		}
	}
	if bad > 10 {
		t.Errorf("... and %d more 5xx answers other than 503", bad-10)
	}
}

func (r *loadResult) acceptedIDs() []string {
	ids := make([]string, 0, len(r.accepted))
	for _, id := range r.accepted {
		ids = append(ids, id)
	}
	return ids
}

// storedRows is what the test's table holds.
type storedRows struct {
	total   int               // rows
	ids     map[string]string // id -> text
	perText map[string]int    // rows per text
}

// duplicates counts the rows beyond the first of each text. Every POST of
// a load has a text of its own, so a text stored twice is one POST stored
// as two rows (under two ids: the id is the primary key, so one id is
// never two rows).
func (rows storedRows) duplicates() int {
	n := 0
	for _, count := range rows.perText {
		n += count - 1
	}
	return n
}

func (rows storedRows) missing(ids []string) []string {
	var m []string
	for _, id := range ids {
		if _, ok := rows.ids[id]; !ok {
			m = append(m, id)
		}
	}
	return m
}

// verify checks the rows against the load: each accepted id stored once,
// with its text, and no row of a POST that was refused. It returns how
// many accepted ids are missing.
func (rows storedRows) verify(t *testing.T, r *loadResult) int {
	t.Helper()
	missing := rows.missing(r.acceptedIDs())
	slices.Sort(missing)
	for i, id := range missing {
		if i == 10 {
			t.Errorf("... and %d more accepted ids not stored", len(missing)-10)
			break
		}
		t.Errorf("accepted id %s was not stored (lost)", id)
	}
	if dup := rows.duplicates(); dup != 0 {
		shown := 0
		for text, n := range rows.perText {
			if n > 1 && shown < 5 {
				shown++
				t.Errorf("text %q stored in %d rows, want 1", text, n)
			}
		}
		t.Errorf("got %d rows for %d distinct texts: %d duplicates, want 0", rows.total, len(rows.perText), dup)
	}
	wrong := 0
	for id, text := range rows.ids {
		var problem string
		switch acceptedID, ok := r.accepted[text]; {
		case ok && acceptedID == id:
			continue
		case ok:
			problem = "stored under id " + id + ", but the POST was answered 202 with id " + acceptedID
		case r.ambiguous[text]:
			continue // the POST's answer was lost: stored or not, both are right
		case r.refused[text]:
			problem = "stored (id " + id + "), but the POST was refused with 503"
		default:
			if o, ok := r.other[text]; ok {
				problem = fmt.Sprintf("stored (id %s), but the POST was answered %d", id, o.status)
			} else {
				problem = "stored (id " + id + "), but never posted"
			}
		}
		wrong++
		if wrong <= 10 {
			t.Errorf("row %q: %s", text, problem)
		}
	}
	if wrong > 10 {
		t.Errorf("... and %d more rows that should not be there", wrong-10)
	}
	return len(missing)
}

// openStackDB opens the stack's database on server directly, not through
// any proxy the services use.
func openStackDB(t *testing.T, s *Stack, server mysql.Config) *sqlx.DB {
	t.Helper()
	cfg := server
	cfg.Database = s.Env("api-server", "MYSQL_DATABASE")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	db, err := mysql.Open(ctx, cfg)
	if err != nil {
		t.Fatalf("open the stack's database: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// readRows reads every row's id and text.
func readRows(t *testing.T, db *sqlx.DB) storedRows {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var got []struct {
		ID   string `db:"id"`
		Text string `db:"text"`
	}
	if err := db.SelectContext(ctx, &got, "SELECT id, text FROM techlist"); err != nil {
		t.Fatalf("read the stored rows: %v", err)
	}
	rows := storedRows{total: len(got), ids: make(map[string]string, len(got)), perText: make(map[string]int, len(got))}
	for _, g := range got {
		rows.ids[g.ID] = g.Text
		rows.perText[g.Text]++
	}
	return rows
}
