// Package stack runs the service programs built from this repository as
// processes, the way the end-to-end tests, devstack's tests and the bench
// all need them: each binds port 0 and the port it got is read from its
// "listening" log line (no window in which another socket takes a port
// picked in advance); Stop sends SIGTERM and wants exit 0 (the graceful
// shutdown every service promises); Kill and Restart; logs kept to show
// when something fails.
//
// Process is the one program, with errors returned (the bench uses it);
// Stack is the three services under a test, failing the test.
package stack

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/techlist/techlist/testenv"
)

// RepoRoot is the folder holding go.work.
func RepoRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOWORK").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOWORK: %w", err)
	}
	work := strings.TrimSpace(string(out))
	if work == "" || work == "off" {
		return "", errors.New("no go.work found: run from the repository")
	}
	return filepath.Dir(work), nil
}

// Build builds programs (folders of the repository root, such as
// "./api-server") into dir, with the race detector when race is set.
func Build(ctx context.Context, dir string, race bool, programs ...string) error {
	root, err := RepoRoot()
	if err != nil {
		return err
	}
	args := []string{"build"}
	if race {
		args = append(args, "-race")
	}
	args = append(args, "-o", dir+string(filepath.Separator))
	build := exec.CommandContext(ctx, "go", append(args, programs...)...)
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("build %s: %w\n%s", strings.Join(programs, " "), err, out)
	}
	return nil
}

// Command is how to start one program.
type Command struct {
	Name string   // shown in errors, e.g. "api-server#2"
	Path string   // the program
	Args []string // its arguments
	// Env is its whole environment, KEY=VALUE (the last of a key wins);
	// PORT=0 is added when it sets no PORT.
	Env []string
	// Dir is its working folder: an empty one, so no stray .env is read.
	Dir string
	// Logs gets its standard output and error; nil discards them.
	Logs io.Writer
}

// Process is one running program.
type Process struct {
	Name string
	URL  string // http://127.0.0.1:<the port it listens on>
	cmd  Command
	exec *exec.Cmd
	out  *watcher
	done chan struct{}
	err  error // how it exited, once done is closed
}

// listenTimeout bounds the wait for the "listening" log line.
const listenTimeout = 30 * time.Second

var listeningAddr = regexp.MustCompile(`listening.*addr["=:]+[^\s"]*:(\d+)`)

var adminListener = regexp.MustCompile(`listener["=:]+admin\b`)

// Start starts c and returns once the program's log says on which port it
// listens (30 seconds at most). The port is written into the process's
// PORT, so Restart binds the same one again.
func Start(c Command) (*Process, error) {
	if !hasKey(c.Env, "PORT") {
		c.Env = append(append([]string(nil), c.Env...), "PORT=0")
	}
	logs := c.Logs
	if logs == nil {
		logs = io.Discard
	}
	out := &watcher{found: make(chan struct{})}
	cmd := exec.Command(c.Path, c.Args...)
	cmd.Env, cmd.Dir = c.Env, c.Dir
	cmd.Stdout = io.MultiWriter(logs, out)
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", c.Name, err)
	}
	p := &Process{Name: c.Name, cmd: c, exec: cmd, out: out, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	select {
	case <-out.found:
	case <-p.done:
		return nil, fmt.Errorf("%s exited (%v) before listening; its log ends:\n%s", p.Name, p.err, p.LogTail())
	case <-time.After(listenTimeout):
		p.Kill()
		return nil, fmt.Errorf("%s did not say where it listens within %s; its log ends:\n%s", p.Name, listenTimeout, p.LogTail())
	}
	p.URL = "http://127.0.0.1:" + out.port
	p.cmd.Env = setKey(c.Env, "PORT", out.port)
	return p, nil
}

// Command returns how p was started, with PORT the port it listens on.
func (p *Process) Command() Command {
	c := p.cmd
	c.Env = append([]string(nil), c.Env...)
	return c
}

// Env returns the value of key in p's environment, and "" when unset.
func (p *Process) Env(key string) string {
	value := ""
	for _, kv := range p.cmd.Env { // the last one wins, as in exec
		if k, v, _ := strings.Cut(kv, "="); k == key {
			value = v
		}
	}
	return value
}

// Pid is the process id.
func (p *Process) Pid() int { return p.exec.Process.Pid }

// Done is closed once the process has exited; then Err says how.
func (p *Process) Done() <-chan struct{} { return p.done }

// Err is how the process exited (nil: status 0); valid once Done is closed.
func (p *Process) Err() error { return p.err }

// Exited reports whether the process has exited.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// WaitReady polls path until it answers 200, for limit at most, and fails
// at once when the process exits.
func (p *Process) WaitReady(ctx context.Context, path string, limit time.Duration) error {
	if err := testenv.PollStatus(ctx, p.URL+path, http.StatusOK, limit, p.done); err != nil {
		if p.Exited() {
			err = fmt.Errorf("%s exited (%v): %w", p.Name, p.err, err)
		}
		return fmt.Errorf("%s not ready: %w; its log ends:\n%s", p.Name, err, p.LogTail())
	}
	return nil
}

// Terminate sends SIGTERM; WaitExit then says how the process ended.
func (p *Process) Terminate() error {
	if err := p.exec.Process.Signal(syscall.SIGTERM); err != nil && !p.Exited() {
		return fmt.Errorf("SIGTERM %s: %w", p.Name, err)
	}
	return nil
}

// WaitExit waits limit at most for the process to exit and returns how it
// exited (nil: status 0) and true; after limit it kills the process and
// returns false.
func (p *Process) WaitExit(limit time.Duration) (exit error, inTime bool) {
	select {
	case <-p.done:
		return p.err, true
	case <-time.After(limit):
		p.exec.Process.Kill()
		<-p.done
		return p.err, false
	}
}

// Stop sends SIGTERM and waits limit at most for the process to exit 0;
// anything else is an error, also when it had exited already.
func (p *Process) Stop(limit time.Duration) error {
	if err := p.Terminate(); err != nil {
		return err
	}
	exit, inTime := p.WaitExit(limit)
	switch {
	case !inTime:
		return fmt.Errorf("%s did not exit within %s of SIGTERM", p.Name, limit)
	case exit != nil:
		return fmt.Errorf("%s exited with %v after SIGTERM, want exit 0; its log ends:\n%s", p.Name, exit, p.LogTail())
	}
	return nil
}

// Kill sends SIGKILL and waits, 10 seconds at most, until the process is
// gone: a crash, with no chance to finish anything.
func (p *Process) Kill() error {
	if err := p.exec.Process.Kill(); err != nil && !p.Exited() {
		return fmt.Errorf("kill %s: %w", p.Name, err)
	}
	select {
	case <-p.done: // "signal: killed", as asked
		return nil
	case <-time.After(10 * time.Second):
		return fmt.Errorf("%s still running 10s after SIGKILL", p.Name)
	}
}

// Restart starts the program again, as it was started and on the port it
// had, with its output to logs, and env (KEY=VALUE) added to its
// environment, winning over what it had. p must have exited.
func (p *Process) Restart(logs io.Writer, env ...string) (*Process, error) {
	if !p.Exited() {
		return nil, fmt.Errorf("restart %s: it is still running", p.Name)
	}
	c := p.Command()
	c.Logs = logs
	c.Env = append(c.Env, env...)
	return Start(c)
}

// LogTail returns the end of the process's output, for error messages.
func (p *Process) LogTail() string { return p.out.tail() }

// watcher reads a process's output for its "listening" line and keeps the
// last tailSize bytes.
type watcher struct {
	mu    sync.Mutex
	line  []byte // the line being written, until the port is found
	port  string
	found chan struct{}
	last  []byte
}

const tailSize = 3000

func (w *watcher) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.last = append(w.last, b...)
	if len(w.last) > 2*tailSize {
		w.last = append(w.last[:0], w.last[len(w.last)-tailSize:]...)
	}
	if w.port != "" {
		return len(b), nil
	}
	w.line = append(w.line, b...)
	for {
		i := bytes.IndexByte(w.line, '\n')
		if i < 0 {
			break
		}
		// The admin listener (ADMIN_ADDR) says "listening" too, with
		// listener=admin; the public port is the one without.
		if m := listeningAddr.FindSubmatch(w.line[:i]); m != nil && !adminListener.Match(w.line[:i]) {
			w.port, w.line = string(m[1]), nil
			close(w.found)
			break
		}
		w.line = w.line[i+1:]
	}
	return len(b), nil
}

func (w *watcher) tail() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.last) > tailSize {
		return string(w.last[len(w.last)-tailSize:])
	}
	return string(w.last)
}

func hasKey(env []string, key string) bool {
	for _, kv := range env {
		if k, _, _ := strings.Cut(kv, "="); k == key {
			return true
		}
	}
	return false
}

// setKey returns env with every value of key set to value.
func setKey(env []string, key, value string) []string {
	out := append([]string(nil), env...)
	for i, kv := range out {
		if k, _, _ := strings.Cut(kv, "="); k == key {
			out[i] = key + "=" + value
		}
	}
	return out
}

// Environ returns the environment of a service: PATH, then vars in order
// (a later map wins over an earlier one for the same key).
func Environ(vars ...map[string]string) []string {
	env := []string{"PATH=" + os.Getenv("PATH")}
	for _, m := range vars {
		for k, v := range m {
			env = append(env, k+"="+v)
		}
	}
	return env
}
