package stack

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/techlist/techlist/testenv"
)

// Time limits of a Stack.
const (
	readyTimeout = 30 * time.Second // until /readyz (or /healthz) answers 200
	stopTimeout  = 20 * time.Second // from SIGTERM to the exit
)

// Stack is the services under one test, started from the programs in one
// folder. At the end of the test each process still running gets SIGTERM
// and must exit 0 (front to back: the client-app, the api-servers, the
// workers), and every process's log is shown when the test failed.
type Stack struct {
	APIURL    string
	ClientURL string
	WorkerURL string
	bin       string
	procs     map[string]*member
	// gone holds the processes killed or stopped before the end (see Kill,
	// Stop and Restart), so their logs can still be shown.
	gone []*member
}

type member struct {
	*Process
	logs *testenv.Buffer
}

// New returns a stack of the programs in bin with nothing running yet.
func New(tb testing.TB, bin string) *Stack {
	tb.Helper()
	s := &Stack{bin: bin, procs: map[string]*member{}}
	tb.Cleanup(func() { s.stopAll(tb) })
	return s
}

// Services starts the worker-server and the api-server with env, then the
// client-app on that api-server, and waits until each is ready. all is
// given to the three, after env (it wins). Every process also gets
// LOG_FORMAT=text unless env or all say otherwise.
func Services(tb testing.TB, bin string, env, all map[string]string) *Stack {
	tb.Helper()
	s := New(tb, bin)
	text := map[string]string{"LOG_FORMAT": "text"}
	s.WorkerURL = s.Add(tb, "worker-server", Environ(text, env, all))
	s.APIURL = s.Add(tb, "api-server", Environ(text, env, all))
	s.ClientURL = s.Add(tb, "client-app", Environ(text, map[string]string{"API_URL": s.APIURL}, all))
	for _, name := range []string{"worker-server", "api-server", "client-app"} {
		s.WaitReady(tb, name, "/readyz")
	}
	return s
}

// Add starts the program of name ("api-server", or a replica such as
// "api-server#2") with env (PORT=0 when env sets no PORT) and returns its
// base URL once it listens. It does not wait until it is ready.
func (s *Stack) Add(tb testing.TB, name string, env []string) string {
	tb.Helper()
	logs := &testenv.Buffer{}
	p, err := Start(Command{Name: name, Path: filepath.Join(s.bin, binaryOf(name)), Env: env, Dir: tb.TempDir(), Logs: logs})
	if err != nil {
		tb.Fatal(err)
	}
	s.procs[name] = &member{Process: p, logs: logs}
	return p.URL
}

// WaitReady waits until the running service name answers 200 on path.
func (s *Stack) WaitReady(tb testing.TB, name, path string) {
	tb.Helper()
	if err := s.running(tb, name).WaitReady(context.Background(), path, readyTimeout); err != nil {
		tb.Fatal(err)
	}
}

// binaryOf returns the program a service name runs: a replica is named
// like "api-server#2".
func binaryOf(name string) string {
	bin, _, _ := strings.Cut(name, "#")
	return bin
}

// StartReplica starts another process of service kind (api-server or
// worker-server) with the environment the first one has, on a port of its
// own, waits until it is ready and returns its base URL. It is stopped (and
// must exit 0) at the end.
func (s *Stack) StartReplica(tb testing.TB, kind string) string {
	tb.Helper()
	first := s.running(tb, kind)
	n := 2
	for s.procs[fmt.Sprintf("%s#%d", kind, n)] != nil {
		n++
	}
	name := fmt.Sprintf("%s#%d", kind, n)
	url := s.Add(tb, name, setKey(first.Command().Env, "PORT", "0"))
	s.WaitReady(tb, name, "/readyz")
	return url
}

// stopAll sends SIGTERM to each service and checks that it exits 0 in time.
func (s *Stack) stopAll(tb testing.TB) {
	var names []string
	for _, kind := range []string{"client-app", "api-server", "worker-server"} {
		for name := range s.procs {
			if binaryOf(name) == kind {
				names = append(names, name)
			}
		}
	}
	for _, name := range names {
		if err := s.procs[name].Stop(stopTimeout); err != nil {
			tb.Error(err)
		}
	}
	// On failure the logs come last stage first (the worker's, then the
	// api-server's, then the client-app's): a CI report that keeps only
	// the start of the output keeps the quietest and often the telling one.
	for i := len(names) - 1; i >= 0 && tb.Failed(); i-- {
		tb.Logf("--- %s logs ---\n%s", names[i], s.procs[names[i]].logs.String())
	}
	if tb.Failed() {
		for i, m := range s.gone {
			tb.Logf("--- %s logs (process %d of the test, ended before the end) ---\n%s", m.Name, i+1, m.logs.String())
		}
	}
}

// Kill sends SIGKILL to the running service name and waits until it is
// gone: a crash, with no chance to finish anything. Restart starts it again.
func (s *Stack) Kill(tb testing.TB, name string) {
	tb.Helper()
	m := s.running(tb, name)
	if err := m.Kill(); err != nil {
		tb.Fatal(err)
	}
	s.retire(name)
}

// Stop sends SIGTERM to the running service name and checks that it exits
// 0 within 20 seconds, as at the end of the test.
func (s *Stack) Stop(tb testing.TB, name string) {
	tb.Helper()
	m := s.running(tb, name)
	if err := m.Stop(stopTimeout); err != nil {
		tb.Error(err)
	}
	s.retire(name)
}

// SignalStop sends SIGTERM to the running service name and returns a
// function that waits limit at most for it to exit and returns how it
// exited (nil: 0); not exiting in time fails the test.
func (s *Stack) SignalStop(tb testing.TB, name string) (waitExit func(limit time.Duration) error) {
	tb.Helper()
	m := s.running(tb, name)
	if err := m.Terminate(); err != nil {
		tb.Fatal(err)
	}
	return func(limit time.Duration) error {
		tb.Helper()
		exit, inTime := m.WaitExit(limit)
		if !inTime {
			tb.Errorf("%s did not exit within %s of SIGTERM", name, limit)
		}
		s.retire(name)
		return exit
	}
}

func (s *Stack) retire(name string) {
	if m, ok := s.procs[name]; ok {
		delete(s.procs, name)
		s.gone = append(s.gone, m)
	}
}

// Restart starts service name again as a new process with the environment
// it had, stopping it first (SIGTERM, exit 0) if it is running, and waits
// until it is ready. The new process is the one stopped at the end.
func (s *Stack) Restart(tb testing.TB, name string) {
	tb.Helper()
	s.RestartWith(tb, name, nil)
}

// RestartWith is Restart with the variables of changes set anew, the rest
// of the environment as it was.
func (s *Stack) RestartWith(tb testing.TB, name string, changes map[string]string) {
	tb.Helper()
	if _, ok := s.procs[name]; ok {
		s.Stop(tb, name)
	}
	last := s.last(name)
	if last == nil {
		tb.Fatalf("restart %s: it never ran in this stack", name)
	}
	logs := &testenv.Buffer{}
	var env []string
	for k, v := range changes {
		env = append(env, k+"="+v)
	}
	p, err := last.Restart(logs, env...) // on the port it had
	if err != nil {
		tb.Fatal(err)
	}
	s.procs[name] = &member{Process: p, logs: logs}
	s.WaitReady(tb, name, "/readyz")
}

// last is the running process of name, else the last one that ended.
func (s *Stack) last(name string) *member {
	if m, ok := s.procs[name]; ok {
		return m
	}
	var last *member
	for _, m := range s.gone {
		if m.Name == name {
			last = m
		}
	}
	return last
}

// Env returns the value of the environment variable key that service name
// was started with, and "" when it has none.
func (s *Stack) Env(name, key string) string {
	if m := s.last(name); m != nil {
		return m.Env(key)
	}
	return ""
}

// Logs returns what service name has logged so far (its running process,
// else its last one).
func (s *Stack) Logs(tb testing.TB, name string) string {
	tb.Helper()
	m := s.last(name)
	if m == nil {
		tb.Fatalf("%s never ran in this stack", name)
	}
	return m.logs.String()
}

// Pid returns the process id of the running service name.
func (s *Stack) Pid(tb testing.TB, name string) int {
	tb.Helper()
	return s.running(tb, name).Pid()
}

func (s *Stack) running(tb testing.TB, name string) *member {
	tb.Helper()
	m, ok := s.procs[name]
	if !ok {
		tb.Fatalf("%s is not running", name)
	}
	return m
}

// PostTech posts text as JSON to the api-server at apiURL, fails the test
// unless it is accepted (202), and returns the accepted tech's id.
func PostTech(tb testing.TB, apiURL, text string) string {
	tb.Helper()
	body, _ := json.Marshal(map[string]string{"text": text})
	resp, err := http.Post(apiURL+"/api/v1/techs", "application/json", bytes.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	var created struct{ ID string }
	if err := json.NewDecoder(resp.Body).Decode(&created); err != nil || resp.StatusCode != http.StatusAccepted || created.ID == "" {
		tb.Fatalf("POST %q: got %s (%v), want 202 with an id", text, resp.Status, err)
	}
	return created.ID
}
