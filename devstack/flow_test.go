package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
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
			s := startServices(t, bin, map[string]string{
				"MYSQL_HOST":  mysqlHost,
				"MYSQL_PORT":  mysqlPort,
				"REDIS_ADDRS": redisAddr,
				"QUEUE_MODE":  mode,
				"TASK_COST":   "20ms",
				"CLAIM_IDLE":  "2s",
			})

			text := "embedded " + mode + " " + strconv.FormatInt(time.Now().UnixNano(), 36)
			noRedirect := &http.Client{
				Timeout:       10 * time.Second,
				CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
			}
			resp, err := noRedirect.PostForm(s.url["client-app"]+"/techs", url.Values{"text": {text}})
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
			listURL := s.url["api-server"] + "/api/v1/techs?limit=10"
			var first string
			eventually(t, "the tech to be listed", func() bool {
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

			var tech struct{ ID, Text, Priority string }
			if code := getJSON(t, s.url["api-server"]+"/api/v1/techs/"+id, &tech); code != http.StatusOK || tech.Text != text || tech.Priority == "" {
				t.Errorf("GET /api/v1/techs/%s: got %d %+v, want 200 with the text and a priority", id, code, tech)
			}
			if page := get(t, s.url["client-app"]+"/"); !strings.Contains(page, text) {
				t.Errorf("the client-app's page does not show %q", text)
			}

			if mode == "pubsub" {
				// The 503 when no worker listens rests on PUBLISH counting
				// its receivers, which the embedded Redis must do too.
				s.stop(t, "worker-server")
				resp, err := http.Post(s.url["api-server"]+"/api/v1/techs", "application/json", strings.NewReader(`{"text":"nobody listens"}`))
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

// eventually calls check until it returns true, for 20 seconds at most.
func eventually(t *testing.T, what string, check func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !check() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// services is one running set of the three programs.
type services struct {
	url   map[string]string
	procs map[string]*service
}

type service struct {
	cmd  *exec.Cmd
	logs *syncBuffer
	done chan error
}

// startServices starts the worker, the api-server and the client-app, each
// on a free port with env, and waits until each is ready. At the end of
// the test each gets SIGTERM and must exit 0 (before devstack stops, since
// cleanups run last first).
func startServices(t *testing.T, bin string, env map[string]string) *services {
	t.Helper()
	s := &services{url: map[string]string{}, procs: map[string]*service{}}
	t.Cleanup(func() {
		for _, name := range []string{"client-app", "api-server", "worker-server"} {
			if _, ok := s.procs[name]; ok {
				s.stop(t, name)
			}
		}
	})
	for _, name := range []string{"worker-server", "api-server", "client-app"} {
		_, port, _ := net.SplitHostPort(freeAddr(t))
		s.url[name] = "http://127.0.0.1:" + port
		vars := []string{"PATH=" + os.Getenv("PATH"), "PORT=" + port, "LOG_FORMAT=text", "STARTUP_TIMEOUT=20s"}
		if name == "client-app" {
			vars = append(vars, "API_URL="+s.url["api-server"])
		} else {
			for k, v := range env {
				vars = append(vars, k+"="+v)
			}
		}
		cmd := exec.Command(filepath.Join(bin, name))
		cmd.Env = vars
		cmd.Dir = t.TempDir() // no stray .env is read
		logs := &syncBuffer{}
		cmd.Stdout, cmd.Stderr = logs, logs
		if err := cmd.Start(); err != nil {
			t.Fatalf("start %s: %v", name, err)
		}
		p := &service{cmd: cmd, logs: logs, done: make(chan error, 1)}
		go func() { p.done <- cmd.Wait() }()
		s.procs[name] = p
		waitReady(t, name, s.url[name]+"/readyz", p)
	}
	return s
}

// stop sends SIGTERM to the service name and checks that it exits 0.
func (s *services) stop(t *testing.T, name string) {
	t.Helper()
	p := s.procs[name]
	delete(s.procs, name)
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
	if t.Failed() {
		t.Logf("--- %s logs ---\n%s", name, p.logs.String())
	}
}

// waitReady polls u until it answers 200, for 30 seconds at most, or until
// the service exits.
func waitReady(t *testing.T, name, u string, p *service) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(u)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case err := <-p.done:
			p.done <- err // for stop
			t.Fatalf("%s exited before it was ready: %v\n%s", name, err, p.logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready at %s after 30s\n%s", name, u, p.logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
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
		out, err := exec.Command("go", "env", "GOWORK").Output()
		if err != nil {
			built.err = fmt.Errorf("go env GOWORK: %w", err)
			return
		}
		work := strings.TrimSpace(string(out))
		if work == "" || work == "off" {
			built.err = fmt.Errorf("no go.work found: the services are built from the repository root")
			return
		}
		dir, err := os.MkdirTemp("", "devstack-test-bin-")
		if err != nil {
			built.err = err
			return
		}
		built.dir = dir
		build := exec.Command("go", "build", "-race", "-o", dir+string(filepath.Separator), "./api-server", "./worker-server", "./client-app")
		build.Dir = filepath.Dir(work)
		if out, err := build.CombinedOutput(); err != nil {
			built.err = fmt.Errorf("build the services: %v\n%s", err, out)
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
