// Package e2e runs the three services as the programs they are, built from
// this repository, against the real Redis and MySQL, and checks the whole
// flow from the outside: through the client-app's form, the API, the seed
// routes, and a real browser.
package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/techlist/techlist"
	"github.com/techlist/techlist/redis"
	"github.com/techlist/techlist/testenv"
)

// binDir holds the programs TestMain built.
var binDir string

func TestMain(m *testing.M) {
	os.Exit(buildAndRun(m))
}

func buildAndRun(m *testing.M) int {
	dir, err := os.MkdirTemp("", "techlist-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	root, err := repoRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	build := exec.Command("go", "build", "-race", "-o", dir+string(filepath.Separator), "./api-server", "./worker-server", "./client-app")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: build the services: %v\n%s", err, out)
		return 1
	}
	binDir = dir
	return m.Run()
}

// repoRoot is the folder holding go.work.
func repoRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOWORK").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOWORK: %w", err)
	}
	work := strings.TrimSpace(string(out))
	if work == "" || work == "off" {
		return "", fmt.Errorf("no go.work found above %s", must(os.Getwd()))
	}
	return filepath.Dir(work), nil
}

func must[T any](v T, _ error) T { return v }

// Stack is one running set of the three services, on ports, a database, a
// channel and a cache prefix of its own.
type Stack struct {
	APIURL    string
	ClientURL string
	WorkerURL string
	procs     map[string]*proc
	// gone holds the processes killed or stopped before the end (see Kill,
	// Stop and Restart), so their logs can still be shown.
	gone []*proc
}

type proc struct {
	name string
	cmd  *exec.Cmd
	env  []string
	logs *syncBuffer
	done chan error
}

// startStack starts the three services and waits until each is healthy.
// extra overrides or adds environment variables for all three. At the end
// of the test each gets SIGTERM and must exit 0; their logs are printed
// when the test failed.
func startStack(t *testing.T, extra map[string]string) *Stack {
	t.Helper()
	db := testenv.MySQLConfig(t)
	_, names := testenv.Redis(t)
	common := map[string]string{
		"MYSQL_HOST":     db.Host,
		"MYSQL_PORT":     strconv.Itoa(db.Port),
		"MYSQL_USERNAME": db.User,
		"MYSQL_PASSWORD": db.Password,
		"MYSQL_DATABASE": db.Database,
		"REDIS_ADDRS":    testenv.RedisAddr(),
		"REDIS_CHANNEL":  names.Channel,
		"REDIS_CACHE":    names.Prefix,
		"LOG_FORMAT":     "text",
		"TASK_COST":      "20ms",
	}
	s := &Stack{procs: map[string]*proc{}}
	t.Cleanup(func() { s.stop(t) })
	// Each service binds port 0 and the test reads the port it got from its
	// "listening" log line: no window in which another socket can take a
	// port picked in advance.
	envOf := func(vars map[string]string) []string {
		env := []string{"PATH=" + os.Getenv("PATH"), "PORT=0"}
		for k, v := range vars {
			env = append(env, k+"="+v)
		}
		for k, v := range extra {
			env = append(env, k+"="+v)
		}
		return env
	}
	s.WorkerURL = s.start(t, "worker-server", envOf(common))
	s.APIURL = s.start(t, "api-server", envOf(common))
	s.ClientURL = s.start(t, "client-app", envOf(map[string]string{"API_URL": s.APIURL, "LOG_FORMAT": "text"}))
	for name, url := range map[string]string{"worker-server": s.WorkerURL, "api-server": s.APIURL, "client-app": s.ClientURL} {
		waitReady(t, name, url+"/readyz")
	}
	return s
}

// start runs service name with env and returns its base URL, once its
// log says on which port it listens. The port is written back into the
// process's PORT, so Restart binds the same one again.
func (s *Stack) start(t *testing.T, name string, env []string) string {
	t.Helper()
	cmd := exec.Command(filepath.Join(binDir, binaryOf(name)))
	cmd.Env = env
	cmd.Dir = t.TempDir() // no stray .env is read
	logs := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	p := &proc{name: name, cmd: cmd, env: env, logs: logs, done: make(chan error, 1)}
	go func() { p.done <- cmd.Wait() }()
	s.procs[name] = p
	port := p.listeningPort(t)
	for i, kv := range p.env {
		if strings.HasPrefix(kv, "PORT=") {
			p.env[i] = "PORT=" + port
		}
	}
	return "http://127.0.0.1:" + port
}

// binaryOf returns the program a service name runs: a replica is named
// like "api-server#2".
func binaryOf(name string) string {
	bin, _, _ := strings.Cut(name, "#")
	return bin
}

// StartReplica starts another process of service kind (api-server or
// worker-server) with the environment the first one has, on a port of its
// own, and returns its base URL. It is stopped (and must exit 0) at the end.
func (s *Stack) StartReplica(t *testing.T, kind string) string {
	t.Helper()
	first := s.running(t, kind)
	n := 2
	for s.procs[fmt.Sprintf("%s#%d", kind, n)] != nil {
		n++
	}
	env := append([]string(nil), first.env...)
	for i, kv := range env {
		if strings.HasPrefix(kv, "PORT=") {
			env[i] = "PORT=0"
		}
	}
	name := fmt.Sprintf("%s#%d", kind, n)
	url := s.start(t, name, env)
	waitReady(t, name, url+"/readyz")
	return url
}

var listeningAddr = regexp.MustCompile(`listening.*addr["=:]+[^\s"]*:(\d+)`)

// listeningPort waits, 30 seconds at most, for the "listening" log line and
// returns the port in it.
func (p *proc) listeningPort(t *testing.T) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if m := listeningAddr.FindStringSubmatch(p.logs.String()); m != nil {
			return m[1]
		}
		select {
		case err := <-p.done:
			p.done <- err
			t.Fatalf("%s exited (%v) before listening:\n%s", p.name, err, p.logs.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not say where it listens within 30s:\n%s", p.name, p.logs.String())
		}
	}
}

// stop sends SIGTERM to each service and checks that it exits 0 in time:
// the graceful shutdown every service promises.
func (s *Stack) stop(t *testing.T) {
	// Front to back: pages, then the API, then the workers; replicas too.
	var names []string
	for _, kind := range []string{"client-app", "api-server", "worker-server"} {
		for name := range s.procs {
			if binaryOf(name) == kind {
				names = append(names, name)
			}
		}
	}
	for _, name := range names {
		p := s.procs[name]
		p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-p.done:
			if err != nil {
				t.Errorf("%s exited with %v after SIGTERM, want exit 0", name, err)
			}
		case <-time.After(20 * time.Second):
			p.cmd.Process.Kill()
			t.Errorf("%s did not exit within 20s of SIGTERM", name)
		}
		if t.Failed() {
			t.Logf("--- %s logs ---\n%s", name, p.logs.String())
		}
	}
	if t.Failed() {
		for i, p := range s.gone {
			t.Logf("--- %s logs (process %d of the test, ended before the end) ---\n%s", p.name, i+1, p.logs.String())
		}
	}
}

// Kill sends SIGKILL to the running service name and waits until it is
// gone: a crash, with no chance to finish anything. Restart starts it again.
func (s *Stack) Kill(t *testing.T, name string) {
	t.Helper()
	p := s.running(t, name)
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatalf("kill %s: %v", name, err)
	}
	select {
	case <-p.done: // "signal: killed", as asked
	case <-time.After(10 * time.Second):
		t.Fatalf("%s still running 10s after SIGKILL", name)
	}
	delete(s.procs, name)
	s.gone = append(s.gone, p)
}

// Stop sends SIGTERM to the running service name and checks that it exits
// 0 within 20 seconds, as at the end of the test.
func (s *Stack) Stop(t *testing.T, name string) {
	t.Helper()
	p := s.running(t, name)
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		if err != nil {
			t.Errorf("%s exited with %v after SIGTERM, want exit 0", name, err)
		}
	case <-time.After(20 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
		t.Errorf("%s did not exit within 20s of SIGTERM", name)
	}
	delete(s.procs, name)
	s.gone = append(s.gone, p)
}

// Restart starts service name again as a new process with the environment
// it had, stopping it first (SIGTERM, exit 0) if it is running, and waits
// until it is ready. The new process is the one stopped at the end.
func (s *Stack) Restart(t *testing.T, name string) {
	t.Helper()
	if _, ok := s.procs[name]; ok {
		s.Stop(t, name)
	}
	var last *proc
	for _, p := range s.gone {
		if p.name == name {
			last = p
		}
	}
	if last == nil {
		t.Fatalf("restart %s: it never ran in this stack", name)
	}
	s.start(t, name, last.env) // on the port it had
	waitReady(t, name, s.url(name)+"/readyz")
}

// Env returns the value of the environment variable key that service name
// was started with, and "" when it has none.
func (s *Stack) Env(name, key string) string {
	p, ok := s.procs[name]
	if !ok {
		for _, g := range s.gone {
			if g.name == name {
				p, ok = g, true
			}
		}
	}
	value := ""
	if ok {
		for _, kv := range p.env { // the last one wins, as in exec
			if k, v, _ := strings.Cut(kv, "="); k == key {
				value = v
			}
		}
	}
	return value
}

func (s *Stack) running(t *testing.T, name string) *proc {
	t.Helper()
	p, ok := s.procs[name]
	if !ok {
		t.Fatalf("%s is not running", name)
	}
	return p
}

func (s *Stack) url(name string) string {
	switch name {
	case "api-server":
		return s.APIURL
	case "worker-server":
		return s.WorkerURL
	default:
		return s.ClientURL
	}
}

// waitReady polls url until it answers 200, for 30 seconds at most.
func waitReady(t *testing.T, name, url string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready at %s after 30s (last: %v)", name, url, errOrStatus(resp, err))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func errOrStatus(resp *http.Response, err error) string {
	if err != nil {
		return err.Error()
	}
	return resp.Status
}

// eventually calls check until it returns true, for 20 seconds at most.
func eventually(t *testing.T, what string, check func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for !check() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// syncBuffer holds a service's log while the test reads it.
type syncBuffer = testenv.Buffer

// watchStored subscribes to the worker's tech.created events (the worker
// publishes them after committing the rows and invalidating the cache) and
// returns a function that waits, 20 seconds at most, until the tech with
// the given id was announced. Call it before posting.
func (s *Stack) watchStored(t *testing.T) func(id string) techlist.Tech {
	t.Helper()
	rdb := redis.NewClient(redis.Config{Addrs: strings.Split(s.Env("api-server", "REDIS_ADDRS"), ",")})
	t.Cleanup(func() { rdb.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	sub, err := redis.SubscribeEvents(ctx, rdb, redis.EventsChannel(s.Env("api-server", "REDIS_CHANNEL")))
	if err != nil {
		cancel()
		t.Fatalf("subscribe to the events: %v", err)
	}
	var mu sync.Mutex
	seen := map[string]techlist.Tech{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			ev, err := sub.Receive(ctx)
			if ctx.Err() != nil {
				return
			}
			if err == nil {
				mu.Lock()
				seen[ev.Tech.ID] = ev.Tech
				mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() { cancel(); sub.Close(); <-done })
	return func(id string) techlist.Tech {
		t.Helper()
		var tech techlist.Tech
		eventually(t, "tech.created for "+id, func() bool {
			mu.Lock()
			defer mu.Unlock()
			var ok bool
			tech, ok = seen[id]
			return ok
		})
		return tech
	}
}
