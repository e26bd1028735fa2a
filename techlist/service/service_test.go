package service

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/techlist/techlist/config"
	"github.com/techlist/techlist/testenv"
)

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

func TestServeShutsDownWhenContextEnds(t *testing.T) {
	srv := NewHTTPServer("127.0.0.1:0", Healthz("test"), discard)
	ln, err := Listen(srv)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var logs testenv.Buffer
	go func() { done <- Serve(ctx, srv, ln, slog.New(slog.NewTextHandler(&logs, nil)), 5*time.Second) }()
	resp, err := http.Get("http://" + ln.Addr().String() + "/")
	if err != nil {
		t.Fatalf("GET while serving: %v", err)
	}
	resp.Body.Close()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve after cancel: got %v, want nil", err)
		}
		// Every service says so the same way: the last line of Serve.
		if !strings.Contains(logs.String(), `msg=stopped`) {
			t.Errorf("log after a clean shutdown: got %q, want a stopped line", logs.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return 10s after its context ended")
	}
}

func TestListenOnATakenPortFails(t *testing.T) {
	first := NewHTTPServer("127.0.0.1:0", Healthz("test"), discard)
	ln, err := Listen(first)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if _, err := Listen(NewHTTPServer(ln.Addr().String(), Healthz("test"), discard)); err == nil {
		t.Error("Listen on a taken port: got nil error")
	}
}

func TestRetry(t *testing.T) {
	calls := 0
	err := Retry(context.Background(), discard, "thing", 10*time.Second, func(context.Context) error {
		calls++
		if calls < 3 {
			return errors.New("not yet")
		}
		return nil
	})
	if err != nil || calls != 3 {
		t.Errorf("got %v after %d calls, want nil after 3", err, calls)
	}
	err = Retry(context.Background(), discard, "thing", 300*time.Millisecond, func(context.Context) error {
		return errors.New("never")
	})
	if err == nil {
		t.Error("Retry of a call that always fails: got nil error")
	}
}

func TestReadyzNamesFailingChecks(t *testing.T) {
	var logged bytes.Buffer
	h := Readyz(slog.New(slog.NewTextHandler(&logged, nil)),
		Check{Name: "redis", Ping: func(context.Context) error { return nil }},
		Check{Name: "mysql", Ping: func(context.Context) error {
			return errors.New("dial tcp 10.1.2.3:3306: Access denied for user 'app'@'10.1.2.4'")
		}},
	)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
	if rec.Code != http.StatusServiceUnavailable {
		t.Errorf("status: got %d, want 503", rec.Code)
	}
	var body struct {
		Status  string
		Failing []string
		Checks  map[string]string
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatal(err)
	}
	if body.Status != "unavailable" || len(body.Failing) != 1 || body.Failing[0] != "mysql" || body.Checks["redis"] != "ok" {
		t.Errorf("got %+v, want mysql failing and redis ok", body)
	}
	// The answer names the dependency, never its address or the driver's
	// words; those go to the log.
	for _, secret := range []string{"10.1.2.3", "3306", "app", "Access denied"} {
		if strings.Contains(rec.Body.String(), secret) {
			t.Errorf("body %s shows %q", rec.Body, secret)
		}
	}
	if !strings.Contains(logged.String(), "10.1.2.3:3306") || !strings.Contains(logged.String(), "mysql") {
		t.Errorf("log %q: want the dependency's name and its error", logged.String())
	}
	rec = httptest.NewRecorder()
	Readyz(discard, Check{Name: "redis", Ping: func(context.Context) error { return nil }}).ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
	if rec.Code != http.StatusOK {
		t.Errorf("all ok: got %d, want 200", rec.Code)
	}
}

func TestHealthCheck(t *testing.T) {
	if err := HealthCheck(1); err == nil {
		t.Error("HealthCheck with nothing listening: got nil error")
	}
}

// On a terminal the logs are text, as the README says: the logger must see
// the terminal itself, not the buffer in front of a pipe. /dev/null stands
// in for a terminal: it is a character device, which is what the check
// asks.
func TestLogFormatFollowsTheOutput(t *testing.T) {
	tty, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer tty.Close()
	r, pipe, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer pipe.Close()
	env := config.NewEnv(func(string) string { return "" })
	for _, tt := range []struct {
		name string
		f    *os.File
		text bool
	}{{"terminal", tty, true}, {"pipe", pipe, false}} {
		w, flush := logOutput(tt.f)
		h := config.NewLogger(env, w).Handler()
		if u, ok := h.(interface{ Unwrap() slog.Handler }); ok {
			h = u.Unwrap() // the trace ids' wrapper
		}
		_, text := h.(*slog.TextHandler)
		flush()
		if text != tt.text {
			t.Errorf("%s: text format %v, want %v", tt.name, text, tt.text)
		}
	}
}

// A header over MaxHeaderBytes is refused with net/http's 431 before any
// handler runs, on the public port and on the admin listener alike; one
// well under it is served.
func TestLargeHeaderGets431(t *testing.T) {
	srv := NewHTTPServer("127.0.0.1:0", Healthz("test"), discard)
	ln, err := Listen(srv)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, srv, ln, discard, 5*time.Second) }()
	defer func() { cancel(); <-done }()
	admin, err := ServeAdmin(ctx, "127.0.0.1:0", discard)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()

	for _, tt := range []struct {
		addr, path string
		size, want int
	}{
		{ln.Addr().String(), "/healthz", 100 << 10, 431},
		{admin.Addr(), "/debug/pprof/", 100 << 10, 431},
		{ln.Addr().String(), "/healthz", 32 << 10, 200},
	} {
		if got := rawGetStatus(t, tt.addr, tt.path, tt.size); got != tt.want {
			t.Errorf("GET %s on %s with a %d KiB header: got status %d, want %d", tt.path, tt.addr, tt.size>>10, got, tt.want)
		}
	}
}

// rawGetStatus sends GET path with one header of size bytes over a plain
// TCP connection and returns the answer's status code.
func rawGetStatus(t *testing.T, addr, path string, size int) int {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	req := "GET " + path + " HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", size) + "\r\nConnection: close\r\n\r\n"
	// Written beside the read: the server may answer before it has read it all.
	go conn.Write([]byte(req))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("read the answer from %s: %v", addr, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestMaxConnsHoldsTheNextConnection: with MAX_CONNS=1 and a request
// being served, a second connection's request waits until the first
// connection closes; an idle keep-alive connection is closed to make room.
func TestMaxConnsHoldsTheNextConnection(t *testing.T) {
	release := make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("/hold", func(w http.ResponseWriter, r *http.Request) { <-release })
	mux.Handle("/", Healthz("test"))
	addr := serveLimited(t, mux, 1)

	busy := dial(t, addr)
	io.WriteString(busy, "GET /hold HTTP/1.1\r\nHost: x\r\n\r\n")
	second := dial(t, addr) // the kernel completes it; the server cannot serve it yet
	if line, err := ask(second, 300*time.Millisecond); err == nil {
		t.Errorf("a second connection while the first's request runs was served: %q", line)
	}
	close(release)
	busy.Close()
	second.SetDeadline(time.Now().Add(5 * time.Second))
	if line, err := bufio.NewReader(second).ReadString('\n'); err != nil || !strings.Contains(line, "200") {
		t.Errorf("the second connection once the first closed: got %q, %v", line, err)
	}

	// second is now idle, kept alive: a third connection gets its slot.
	third := dial(t, addr)
	if line, err := ask(third, 5*time.Second); err != nil || !strings.Contains(line, "200") {
		t.Errorf("a third connection with the only one open idle: got %q, %v", line, err)
	}
}

// serveLimited serves h on a port of its own through ListenAndServe with
// maxConns, until the test ends, and returns its address.
func serveLimited(t *testing.T, h http.Handler, maxConns int) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var logs testenv.Buffer
	done := make(chan error, 1)
	go func() {
		done <- ListenAndServe(ctx, NewHTTPServer("127.0.0.1:0", h, discard), "", maxConns, slog.New(slog.NewTextHandler(&logs, nil)), time.Second)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	var addr string
	testenv.Eventually(t, "the listening line", func() bool {
		_, rest, ok := strings.Cut(logs.String(), "msg=listening addr=")
		if line, _, whole := strings.Cut(rest, "\n"); ok && whole {
			addr = line
			return true
		}
		return false
	})
	return addr
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// ask sends GET /healthz on c and reads the status line, within wait.
func ask(c net.Conn, wait time.Duration) (string, error) {
	c.SetDeadline(time.Now().Add(wait))
	if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		return "", err
	}
	return bufio.NewReader(c).ReadString('\n')
}
