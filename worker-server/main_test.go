package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/techlist/techlist"
	"github.com/techlist/techlist/config"
	"github.com/techlist/techlist/mysql"
	"github.com/techlist/techlist/redis"
	"github.com/techlist/techlist/testenv"

	"github.com/techlist/worker-server/internal/task"
)

// syncBuffer holds a service's log while the test reads it.
type syncBuffer = testenv.Buffer

// getenvFrom returns a getenv reading only env, so the test's environment
// and any .env file play no part.
func getenvFrom(env map[string]string) func(string) string {
	return func(name string) string { return env[name] }
}

// testEnv returns the variables for a worker on the test's own database,
// channel, cache prefix and port.
func testEnv(t *testing.T) (map[string]string, mysql.Config, goredis.UniversalClient, testenv.Names) {
	t.Helper()
	cfg := testenv.MySQLConfig(t)
	rdb, names := testenv.Redis(t)
	env := map[string]string{
		"PORT":             strconv.Itoa(testenv.FreePort(t)),
		"MYSQL_HOST":       cfg.Host,
		"MYSQL_PORT":       strconv.Itoa(cfg.Port),
		"MYSQL_USERNAME":   cfg.User,
		"MYSQL_PASSWORD":   cfg.Password,
		"MYSQL_DATABASE":   cfg.Database,
		"MYSQL_TABLE":      cfg.Table,
		"REDIS_ADDRS":      testenv.RedisAddr(),
		"REDIS_CHANNEL":    names.Channel,
		"REDIS_CACHE":      names.Prefix,
		"TASK_COST":        "0",
		"LOG_FORMAT":       "json",
		"STARTUP_TIMEOUT":  "20s",
		"SHUTDOWN_TIMEOUT": "10s",
	}
	return env, cfg, rdb, names
}

// running is run working in a goroutine.
type running struct {
	cancel context.CancelFunc
	done   chan struct{} // closed when run has returned
	err    error         // what run returned, once done is closed
}

// startRun runs run in a goroutine. When the test ends, run is stopped and
// waited for, and its logs are shown if the test failed.
func startRun(t *testing.T, env map[string]string) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{cancel: cancel, done: make(chan struct{})}
	var stdout, stderr syncBuffer
	go func() {
		defer close(r.done)
		r.err = run(ctx, nil, getenvFrom(env), &stdout, &stderr)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(30 * time.Second):
			t.Errorf("run did not return within 30s of the test's end")
		}
		if t.Failed() {
			t.Logf("run's stdout:\n%s\nrun's stderr:\n%s", stdout.String(), stderr.String())
		}
	})
	return r
}

// wait waits for run to return, at most limit, and returns its error.
func (r *running) wait(t *testing.T, limit time.Duration) error {
	t.Helper()
	select {
	case <-r.done:
		return r.err
	case <-time.After(limit):
		t.Fatalf("run did not return within %s", limit)
		return nil
	}
}

// metric returns the value of the sample named series (name and labels as
// written in the text format) on the /metrics page at url.
func metric(t *testing.T, url, series string) (float64, bool) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: got %s, want 200", url, resp.Status)
	}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if ok && name == series {
			f, err := strconv.ParseFloat(value, 64)
			if err != nil {
				t.Fatalf("%s: value %q: %v", series, value, err)
			}
			return f, true
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("read %s: %v", url, err)
	}
	return 0, false
}

// TestRun runs the worker end to end in each queue mode: envelopes put on
// the queue become rows, malformed ones are counted and never stored, and
// the worker stops cleanly when its context ends.
func TestRun(t *testing.T) {
	for _, mode := range []string{"pubsub", "streams"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			testRun(t, mode)
		})
	}
}

func testRun(t *testing.T, mode string) {
	env, cfg, rdb, names := testEnv(t)
	env["QUEUE_MODE"] = mode
	r := startRun(t, env)
	base := "http://127.0.0.1:" + env["PORT"]

	testenv.WaitStatus(t, base+"/healthz", http.StatusOK, 30*time.Second, r.done)
	testenv.WaitStatus(t, base+"/readyz", http.StatusOK, 5*time.Second, r.done)
	// The -healthcheck probe of the container image finds it serving.
	if err := run(context.Background(), []string{"-healthcheck"}, getenvFrom(env), io.Discard, io.Discard); err != nil {
		t.Errorf("run -healthcheck on a serving worker: got %v, want nil", err)
	}

	// run joined the queue before it served, so nothing put on it now is
	// lost.
	ctx, stop := context.WithTimeout(context.Background(), 30*time.Second)
	defer stop()
	publish := func(payload []byte) {
		t.Helper()
		if mode == "streams" {
			// The field the api-server's StreamPublisher writes.
			err := rdb.XAdd(ctx, &goredis.XAddArgs{Stream: names.Channel, Values: []any{"envelope", payload}}).Err()
			if err != nil {
				t.Fatalf("append to the stream: %v", err)
			}
			return
		}
		n, err := rdb.Publish(ctx, names.Channel, payload).Result()
		if err != nil || n != 1 {
			t.Fatalf("publish: got %d receivers, %v; want 1, nil", n, err)
		}
	}
	const valid = 50
	texts := map[string]string{}
	for i := range valid {
		id := fmt.Sprintf("01890a5d-ac96-774b-bcce-%012x", i)
		texts[id] = fmt.Sprintf("tech number %d", i)
		b, err := techlist.NewEnvelope(id, texts[id], mysql.Now()).Encode()
		if err != nil {
			t.Fatal(err)
		}
		publish(b)
	}
	malformed := []string{
		`not json`,
		`{"v":2,"id":"01890a5d-ac96-774b-bcce-b302099a8057","text":"Go","submitted_at":"2024-05-01T12:00:00Z"}`,
		`{"v":1,"id":"nope","text":"Go","submitted_at":"2024-05-01T12:00:00Z"}`,
		`{"v":1,"id":"01890a5d-ac96-774b-bcce-b302099a8057","text":"Go\u0007","submitted_at":"2024-05-01T12:00:00Z"}`,
		`{"v":1,"id":"01890a5d-ac96-774b-bcce-b302099a8057","text":"Go","submitted_at":"yesterday"}`,
		// Well-formed, but nothing the api-server makes: a nil or v4 id, a
		// submission time decades ahead.
		`{"v":1,"id":"00000000-0000-0000-0000-000000000000","text":"Go","submitted_at":"2024-05-01T12:00:00Z"}`,
		`{"v":1,"id":"9b2f4c1e-7d3a-4e5b-9c8d-0a1b2c3d4e5f","text":"Go","submitted_at":"2024-05-01T12:00:00Z"}`,
		`{"v":1,"id":"01890a5d-ac96-774b-bcce-b302099a8058","text":"Go","submitted_at":"2099-01-01T00:00:00Z"}`,
	}
	for _, m := range malformed {
		publish([]byte(m))
	}

	db, err := mysql.Open(ctx, cfg)
	if err != nil {
		t.Fatalf("open the worker's database: %v", err)
	}
	defer db.Close()
	deadline := time.Now().Add(15 * time.Second)
	var rows int
	for {
		if err := db.GetContext(ctx, &rows, "SELECT COUNT(*) FROM `"+cfg.Table+"`"); err != nil {
			t.Fatalf("count rows: %v", err)
		}
		if rows >= valid || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if rows != valid {
		t.Fatalf("got %d rows, want %d", rows, valid)
	}
	store := mysql.NewStore(db, cfg.Table)
	for id, text := range texts {
		got, err := store.Get(ctx, id)
		if err != nil {
			t.Fatalf("Get(%s): %v", id, err)
		}
		if got.Text != text || got.Priority != task.Priority(text) || got.CreatedAt.IsZero() {
			t.Errorf("got row %+v, want text %q, priority %s and a created_at", got, text, task.Priority(text))
		}
	}

	// The counters are updated after the commit: poll them, bounded.
	wantMetrics := map[string]float64{
		`worker_messages_total{result="received"}`: float64(valid + len(malformed)),
		`worker_messages_total{result="rejected"}`: float64(len(malformed)),
		`worker_messages_total{result="stored"}`:   valid,
		`worker_messages_total{result="failed"}`:   0,
		// Nobody read a list: no first page to refill, so no SELECT.
		`worker_list_prefills_total`:         0,
		`worker_list_prefill_failures_total`: 0,
	}
	deadline = time.Now().Add(10 * time.Second)
	for {
		var mismatch []string
		for series, want := range wantMetrics {
			if got, ok := metric(t, base+"/metrics", series); !ok || got != want {
				mismatch = append(mismatch, fmt.Sprintf("%s: got %v (present %v), want %v", series, got, ok, want))
			}
		}
		if len(mismatch) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/metrics:\n%s", strings.Join(mismatch, "\n"))
		}
		time.Sleep(50 * time.Millisecond)
	}

	// Each commit invalidated the api-server's cached lists.
	if gen, err := rdb.Get(ctx, names.Prefix+":{list}:gen").Int(); err != nil || gen < 1 {
		t.Errorf("cache generation: got %d, %v; want at least 1", gen, err)
	}

	if mode == "streams" {
		// Malformed entries are moved aside with their error; stored ones
		// are acknowledged and deleted, so the stream empties. Both happen
		// just after the counters move: poll, bounded.
		deadline = time.Now().Add(10 * time.Second)
		for {
			dead, err := rdb.XLen(ctx, redis.DeadStream(names.Channel)).Result()
			if err != nil {
				t.Fatalf("length of the dead-letter stream: %v", err)
			}
			left, err := rdb.XLen(ctx, names.Channel).Result()
			if err != nil {
				t.Fatalf("length of the stream: %v", err)
			}
			if dead == int64(len(malformed)) && left == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("got %d dead letters and %d entries left in the stream, want %d and 0", dead, left, len(malformed))
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	r.cancel()
	if err := r.wait(t, 20*time.Second); err != nil {
		t.Errorf("run after cancel: got %v, want nil", err)
	}
	// The HTTP server stopped with the worker.
	if err := run(context.Background(), []string{"-healthcheck"}, getenvFrom(env), io.Discard, io.Discard); err == nil {
		t.Error("run -healthcheck after shutdown: got nil, want an error")
	}
}

func TestRunStopsWhenThePortIsTaken(t *testing.T) {
	env, _, _, _ := testEnv(t)
	ln, err := net.Listen("tcp", ":"+env["PORT"])
	if err != nil {
		t.Fatalf("take the port: %v", err)
	}
	defer ln.Close()
	r := startRun(t, env)
	if err := r.wait(t, 30*time.Second); err == nil || !strings.Contains(err.Error(), "listen") {
		t.Errorf("got %v, want an error about listening on the port", err)
	}
}

func TestRunRejectsBadConfig(t *testing.T) {
	tests := []struct {
		name, value string
	}{
		{"TASK_COST", "abc"},
		{"TASK_COST", "-1s"},
		{"BATCH_SIZE", "0"},
		{"BATCH_SIZE", "ten"},
		{"BATCH_WAIT", "soon"},
		{"WORKER_CONCURRENCY", "0"},
		{"SHUTDOWN_TIMEOUT", "1 minute"},
		{"PORT", "-1"},
		{"PORT", "65536"},
		{"MYSQL_PORT", "x"},
		{"MYSQL_TABLE", "bad-name"},
		{"MYSQL_TABLE", "techs`; DROP TABLE x"},
		{"MYSQL_DATABASE", "1db"},
		{"REDIS_ADDRS", "no-port"},
		{"QUEUE_MODE", "kafka"},
		{"MAX_DELIVERIES", "0"},
		{"STREAM_PARTITIONS", "0"},
		{"STREAM_PARTITIONS", "65"},
		{"STREAM_PARTITIONS", "3.5"},
		{"CLAIM_IDLE", "a while"},
		{"PUBSUB_BUFFER", "0"},
		{"PUBSUB_BUFFER", "lots"},
		{"ADMIN_ADDR", "6060"},
		{"LOG_LEVEL", "loud"},
	}
	for _, tt := range tests {
		t.Run(tt.name+"="+tt.value, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			// Nothing else is set: a bad value must stop run before it
			// tries to reach any server.
			var stdout, stderr syncBuffer
			err := run(ctx, nil, getenvFrom(map[string]string{tt.name: tt.value}), &stdout, &stderr)
			if err == nil || !strings.Contains(err.Error(), tt.name) {
				t.Errorf("got %v, want an error naming %s", err, tt.name)
			}
		})
	}
}

func TestRunRejectsBadArguments(t *testing.T) {
	tests := []struct {
		args []string
		want string // in the error or the usage
	}{
		{[]string{"-bogus"}, "-healthcheck"},
		{[]string{"serve"}, "serve"},
		{[]string{"-dead-letters", "bogus"}, "bogus"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var stderr syncBuffer
			err := run(context.Background(), tt.args, getenvFrom(nil), io.Discard, &stderr)
			if err == nil {
				t.Fatalf("got nil, want an error for %q", tt.args)
			}
			if !strings.Contains(err.Error()+stderr.String(), tt.want) {
				t.Errorf("got %v (usage %q), want a message naming %q", err, stderr.String(), tt.want)
			}
		})
	}
}

func TestHealthcheckWithoutAServer(t *testing.T) {
	env := map[string]string{"PORT": strconv.Itoa(testenv.FreePort(t))}
	if err := run(context.Background(), []string{"-healthcheck"}, getenvFrom(env), io.Discard, io.Discard); err == nil {
		t.Error("got nil, want an error when nothing serves on PORT")
	}
}

// -dead-letters replay keeps the api-server's STREAM_MAX_LEN: with the
// stream full it replays nothing, says so, and the letters stay dead.
func TestReplayCommandKeepsStreamMaxLen(t *testing.T) {
	t.Parallel()
	rdb, names := testenv.Redis(t)
	ctx := context.Background()
	for _, stream := range []string{names.Channel, redis.DeadStream(names.Channel)} {
		for i := range 2 {
			env := techlist.NewEnvelope(fmt.Sprintf("01890a5d-ac96-774b-bcce-%s%02d", testenv.Suffix(), i), "Go", time.Now())
			b, _ := env.Encode()
			if err := rdb.XAdd(ctx, &goredis.XAddArgs{Stream: stream, Values: []any{"envelope", b}}).Err(); err != nil {
				t.Fatal(err)
			}
		}
	}
	env := map[string]string{"REDIS_ADDRS": testenv.RedisAddr(), "REDIS_CHANNEL": names.Channel, "STREAM_MAX_LEN": "2"}
	var stdout syncBuffer
	err := run(ctx, []string{"-dead-letters", "replay"}, getenvFrom(env), &stdout, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "STREAM_MAX_LEN") || !strings.Contains(err.Error(), "2 dead letters left") {
		t.Errorf("replay into a full stream: got %v (%s), want an error naming STREAM_MAX_LEN and the 2 letters left", err, stdout.String())
	}
	if n := rdb.XLen(ctx, names.Channel).Val(); n != 2 {
		t.Errorf("stream length: got %d, want 2", n)
	}

	env["STREAM_MAX_LEN"] = "4"
	stdout = syncBuffer{}
	if err := run(ctx, []string{"-dead-letters", "replay"}, getenvFrom(env), &stdout, io.Discard); err != nil {
		t.Fatalf("replay with room: %v", err)
	}
	if !strings.Contains(stdout.String(), "replayed 2 dead letters") || rdb.XLen(ctx, names.Channel).Val() != 4 {
		t.Errorf("replay with room: got %q and %d entries, want 2 replayed and 4 entries", stdout.String(), rdb.XLen(ctx, names.Channel).Val())
	}
}

// -dead-letters lists and replays the dead letters of every stream a
// worker drains: the single stream, its own partitions, and partitions an
// api-server with another STREAM_PARTITIONS registered; each letter goes
// back to its own stream.
func TestDeadLettersCoverAllPartitions(t *testing.T) {
	t.Parallel()
	rdb, names := testenv.Redis(t)
	ctx := context.Background()
	three := redis.PartitionStreams(names.Channel, 3)
	two := redis.PartitionStreams(names.Channel, 2)
	if err := rdb.SAdd(ctx, redis.PartitionsKey(names.Channel), two[0], two[1]).Err(); err != nil {
		t.Fatal(err)
	}
	streams := []string{names.Channel, three[1], two[1]}
	for i, stream := range streams {
		env := techlist.NewEnvelope(fmt.Sprintf("01890a5d-ac96-774b-bcce-%s%02d", testenv.Suffix(), i), "Go", time.Now())
		b, _ := env.Encode()
		if err := rdb.XAdd(ctx, &goredis.XAddArgs{Stream: redis.DeadStream(stream), Values: []any{"envelope", b}}).Err(); err != nil {
			t.Fatal(err)
		}
	}
	env := map[string]string{"REDIS_ADDRS": testenv.RedisAddr(), "REDIS_CHANNEL": names.Channel, "STREAM_PARTITIONS": "3"}
	var stdout syncBuffer
	if err := run(ctx, []string{"-dead-letters", "list"}, getenvFrom(env), &stdout, io.Discard); err != nil {
		t.Fatal(err)
	}
	for _, stream := range streams {
		if want := "1 dead letters in " + redis.DeadStream(stream) + "\n"; !strings.Contains(stdout.String(), want) {
			t.Errorf("list: want %q in\n%s", want, stdout.String())
		}
	}
	stdout = syncBuffer{}
	if err := run(ctx, []string{"-dead-letters", "replay"}, getenvFrom(env), &stdout, io.Discard); err != nil {
		t.Fatal(err)
	}
	for _, stream := range streams {
		if rdb.XLen(ctx, stream).Val() != 1 || rdb.XLen(ctx, redis.DeadStream(stream)).Val() != 0 {
			t.Errorf("after replay: %s holds %d, its dead letters %d; want 1 and 0 (%s)", stream,
				rdb.XLen(ctx, stream).Val(), rdb.XLen(ctx, redis.DeadStream(stream)).Val(), stdout.String())
		}
	}
}

// TestDefaultPubSubBufferDrainsWithinShutdownTimeout: with the defaults,
// a worker stopped holding a full PUBSUB_BUFFER finishes it within
// SHUTDOWN_TIMEOUT; past what it can finish, it warns.
func TestDefaultPubSubBufferDrainsWithinShutdownTimeout(t *testing.T) {
	env := func(vars map[string]string) settings {
		return readSettings(config.NewEnv(func(k string) string { return vars[k] }))
	}
	defaults := env(nil)
	if most := drainCapacity(defaults); defaults.pubsub.Buffer > most {
		t.Errorf("default PUBSUB_BUFFER %d, but the default worker finishes %d within SHUTDOWN_TIMEOUT", defaults.pubsub.Buffer, most)
	}
	slow := env(map[string]string{"TASK_COST": "1s", "WORKER_CONCURRENCY": "10", "SHUTDOWN_TIMEOUT": "5s"})
	if got := drainCapacity(slow); got != 50 {
		t.Errorf("drainCapacity with 10 tasks of 1s in 5s: got %d, want 50", got)
	}
	if got := drainCapacity(env(map[string]string{"TASK_COST": "0"})); got != math.MaxInt {
		t.Errorf("drainCapacity with TASK_COST=0: got %d, want no limit", got)
	}
}
