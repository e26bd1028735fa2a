package e2e

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	goredis "github.com/redis/go-redis/v9"
	"github.com/techlist/techlist/redis"
	"github.com/techlist/techlist/testenv"
)

// poster sends POSTs one after another and keeps each outcome in order.
type poster struct {
	url, prefix string
	client      *http.Client
	sent        []outcome
}

func newPoster(s *Stack, prefix string) *poster {
	return &poster{url: s.APIURL + "/api/v1/techs", prefix: prefix, client: &http.Client{Timeout: 10 * time.Second}}
}

// post sends the next text and returns its outcome.
func (p *poster) post() outcome {
	o := postOne(p.client, p.url, fmt.Sprintf("%s #%05d", p.prefix, len(p.sent)))
	p.sent = append(p.sent, o)
	return o
}

func accepted(o outcome) bool { return o.err == nil && o.status == http.StatusAccepted }

// refused is a 503 saying nothing was queued (not the "may or may not
// have been queued" of an unconfirmed publish).
func refused(o outcome) bool {
	return o.err == nil && o.status == http.StatusServiceUnavailable && !strings.Contains(o.body, "may or may not")
}

// storedTexts counts the stored rows by text: each text was posted once,
// so a count above 1 is a duplicate, whatever the ids.
func storedTexts(t *testing.T, db *sqlx.DB, prefix string) map[string]int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var rows []struct {
		Text  string `db:"text"`
		Count int    `db:"n"`
	}
	if err := db.SelectContext(ctx, &rows, "SELECT text, COUNT(*) AS n FROM techlist WHERE text LIKE ? GROUP BY text", prefix+"%"); err != nil {
		t.Fatalf("read the stored texts: %v", err)
	}
	got := make(map[string]int, len(rows))
	for _, r := range rows {
		got[r.Text] = r.Count
	}
	return got
}

// checkStored: every POST answered 202 is stored exactly once, and none
// refused is stored. It returns how many accepted are missing.
func (p *poster) checkStored(t *testing.T, stored map[string]int) int {
	t.Helper()
	missing, bad := 0, 0
	for _, o := range p.sent {
		n := stored[o.text]
		switch {
		case accepted(o) && n == 0:
			missing++
		case accepted(o) && n > 1, refused(o) && n > 0:
			bad++
			if bad <= 10 {
				t.Errorf("POST %q answered %d: stored %d times", o.text, o.status, n)
			}
		}
	}
	if missing > 0 {
		t.Errorf("%d POSTs answered 202 were not stored (lost)", missing)
	}
	return missing
}

// TestPubSubSIGTERMUnderBacklog: a worker with a backlog (tasks of 500 ms,
// two at a time, 40 waiting) gets SIGTERM while POSTs go on for a second.
// It leaves the channel first, so POSTs from then on get 503; everything
// answered 202 is stored before it exits 0.
func TestPubSubSIGTERMUnderBacklog(t *testing.T) {
	t.Parallel()
	server := testenv.MySQLConfig(t)
	s := startStack(t, map[string]string{"TASK_COST": "500ms", "WORKER_CONCURRENCY": "2", "SHUTDOWN_TIMEOUT": "25s"})
	db := openStackDB(t, s, server)
	prefix := "sigterm backlog " + testenv.Suffix()
	p := newPoster(s, prefix)
	for range 40 {
		if o := p.post(); !accepted(o) {
			t.Fatalf("POST %q before the SIGTERM: got %d %s (%v), want 202", o.text, o.status, o.body, o.err)
		}
	}

	waitExit := s.SignalStop(t, "worker-server")
	firstRefused := -1
	for end := time.Now().Add(time.Second); time.Now().Before(end); {
		if o := p.post(); refused(o) && firstRefused < 0 {
			firstRefused = len(p.sent) - 1
		}
	}
	// 40 tasks at 4 a second, and what came before the withdrawal.
	if err := waitExit(40 * time.Second); err != nil {
		t.Errorf("worker-server exited with %v after SIGTERM, want exit 0", err)
	}

	during := p.sent[40:]
	acceptedDuring := 0
	for _, o := range during {
		if accepted(o) {
			acceptedDuring++
		}
	}
	if firstRefused < 0 {
		t.Errorf("none of the %d POSTs in the second after SIGTERM was refused (%d answered 202), want 503 once the worker left", len(during), acceptedDuring)
	}
	for i := max(firstRefused, 0); firstRefused >= 0 && i < len(p.sent); i++ {
		if o := p.sent[i]; !refused(o) {
			t.Errorf("POST %d, after the first 503: got %d %s (%v), want 503 (the worker has left)", i, o.status, o.body, o.err)
			break
		}
	}
	missing := p.checkStored(t, storedTexts(t, db, prefix))
	t.Logf("SIGTERM under backlog: %d POSTs before, %d in the second after (%d answered 202 before the first 503), %d accepted not stored",
		40, len(during), acceptedDuring, missing)
}

// pubsubBuffer is PUBSUB_BUFFER in the MySQL-down tests, and bufferSlop
// what a worker may accept past it: Redis delivers what was published
// before the worker's withdrawal reached it (here, POSTs sent one at a
// time, so a few).
const (
	pubsubBuffer = 20
	bufferSlop   = 10
)

// postUntilRefused POSTs until one is refused (with MySQL cut, once the
// worker holds PUBSUB_BUFFER messages) and returns how many were accepted;
// it fails the test when more than the buffer and its slop are accepted.
// The worker's batches are left at their defaults (500 rows, 4 at once),
// far larger than the buffer: the bound must count what is held in them.
func postUntilRefused(t *testing.T, p *poster) int {
	t.Helper()
	for !refused(p.post()) {
		if n := len(p.sent); n > pubsubBuffer+bufferSlop {
			o := p.sent[n-1]
			t.Fatalf("%d POSTs with MySQL cut were answered without a 503 (last: %d %s); want 503 once the worker holds PUBSUB_BUFFER=%d",
				n, o.status, o.body, pubsubBuffer)
		}
	}
	n := 0
	for _, o := range p.sent {
		if accepted(o) {
			n++
		}
	}
	return n
}

// TestPubSubLeavesWhenMySQLIsDown: with MySQL cut, the worker keeps
// reading its channel, but holds at most PUBSUB_BUFFER messages unstored
// (waiting, running or in batches); past it, it leaves the channel, so
// POSTs get 503 instead of 202-then-lost, and stays out while MySQL is
// down. When MySQL is back, everything answered 202 is stored, and the
// worker joins again: POSTs are accepted.
func TestPubSubLeavesWhenMySQLIsDown(t *testing.T) {
	t.Parallel()
	server := testenv.MySQLConfig(t)
	mysqlProxy := newFaultProxy(t, "mysql", fmt.Sprintf("%s:%d", server.Host, server.Port))
	s := startStack(t, map[string]string{
		"MYSQL_HOST": mysqlProxy.Host, "MYSQL_PORT": strconv.Itoa(mysqlProxy.Port),
		"TASK_COST": "0", "PUBSUB_BUFFER": strconv.Itoa(pubsubBuffer),
	})
	db := openStackDB(t, s, server)
	prefix := "mysql down " + testenv.Suffix()
	p := newPoster(s, prefix)

	mysqlProxy.Cut()
	acceptedBefore := postUntilRefused(t, p)
	// Several leases long: the worker must not join again while its
	// batches cannot be stored.
	for end := time.Now().Add(2 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if o := p.post(); !refused(o) {
			t.Fatalf("POST with the worker holding PUBSUB_BUFFER unstored messages: got %d %s (%v), want 503", o.status, o.body, o.err)
		}
	}

	mysqlProxy.Restore(t)
	testenv.Eventually(t, "a POST to be accepted again once MySQL is back", func() bool {
		time.Sleep(100 * time.Millisecond)
		return accepted(p.post())
	})
	var stored map[string]int
	testenv.Eventually(t, "every accepted POST stored", func() bool {
		stored = storedTexts(t, db, prefix)
		for _, o := range p.sent {
			if accepted(o) && stored[o.text] == 0 {
				return false
			}
		}
		return true
	})
	p.checkStored(t, stored)
	t.Logf("MySQL down: %d POSTs accepted before the first 503; %d POSTs in all, %d rows", acceptedBefore, len(p.sent), len(stored))
}

// TestPubSubStopWithMySQLDownNamesWhatIsLost: stopped while MySQL is cut,
// a pubsub worker cannot store what it holds; it loses at most
// PUBSUB_BUFFER (plus the slop) accepted techs, exits non-zero, and its
// log names every accepted id it lost, so an operator knows which.
func TestPubSubStopWithMySQLDownNamesWhatIsLost(t *testing.T) {
	t.Parallel()
	server := testenv.MySQLConfig(t)
	mysqlProxy := newFaultProxy(t, "mysql", fmt.Sprintf("%s:%d", server.Host, server.Port))
	s := startStack(t, map[string]string{
		"MYSQL_HOST": mysqlProxy.Host, "MYSQL_PORT": strconv.Itoa(mysqlProxy.Port),
		"TASK_COST": "0", "PUBSUB_BUFFER": strconv.Itoa(pubsubBuffer), "SHUTDOWN_TIMEOUT": "2s",
	})
	p := newPoster(s, "stop with mysql down "+testenv.Suffix())
	mysqlProxy.Cut()
	postUntilRefused(t, p)

	if err := s.SignalStop(t, "worker-server")(20 * time.Second); err == nil {
		t.Errorf("worker-server exited 0 after SIGTERM with MySQL cut, want non-zero: it could not store what it held")
	}
	var lossLines []string
	for _, line := range strings.Split(s.Logs(t, "worker-server"), "\n") {
		if strings.Contains(line, "level=ERROR") {
			lossLines = append(lossLines, line)
		}
	}
	for _, o := range p.sent {
		if !accepted(o) {
			continue
		}
		named := false
		for _, line := range lossLines {
			named = named || strings.Contains(line, o.id)
		}
		if !named {
			t.Errorf("accepted id %s was lost at the stop and no error line names it", o.id)
		}
	}
	if t.Failed() {
		t.Logf("the worker's error lines:\n%s", strings.Join(lossLines, "\n"))
	}
	mysqlProxy.Restore(t)
}

// TestPubSubPatternSubscriberIsNoWorker: with no worker running, a
// pattern subscriber on the channel, or a stray SUBSCRIBE, does not make
// a POST accepted; with the worker back, a POST is accepted and stored.
func TestPubSubPatternSubscriberIsNoWorker(t *testing.T) {
	t.Parallel()
	s := startStack(t, map[string]string{"TASK_COST": "0"})
	s.Stop(t, "worker-server")
	channel := s.Env("api-server", "REDIS_CHANNEL")
	rdb := redis.NewClient(redis.Config{Addrs: []string{testenv.RedisAddr()}})
	defer rdb.Close()
	p := newPoster(s, "stray subscriber "+testenv.Suffix())

	for _, tc := range []struct {
		name      string
		subscribe func(ctx context.Context) *goredis.PubSub
	}{
		{"PSUBSCRIBE " + channel + "*", func(ctx context.Context) *goredis.PubSub { return rdb.PSubscribe(ctx, channel+"*") }},
		{"SUBSCRIBE " + channel, func(ctx context.Context) *goredis.PubSub { return rdb.Subscribe(ctx, channel) }},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		ps := tc.subscribe(ctx)
		if _, err := ps.Receive(ctx); err != nil { // the confirmation
			t.Fatalf("%s: %v", tc.name, err)
		}
		if o := p.post(); !refused(o) {
			t.Errorf("POST with no worker and a %s connection: got %d %s (%v), want 503", tc.name, o.status, o.body, o.err)
		}
		ps.Close()
		cancel()
	}

	s.Restart(t, "worker-server")
	stored := watchStored(t, s)
	o := p.post()
	if !accepted(o) {
		t.Fatalf("POST with the worker running: got %d %s (%v), want 202", o.status, o.body, o.err)
	}
	if tech := stored(o.id); tech.Text != o.text {
		t.Errorf("stored %q, want %q", tech.Text, o.text)
	}
}
