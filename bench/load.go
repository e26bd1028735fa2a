package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// request is what a load generator sends, and the status that counts as
// an answer.
type request struct {
	method      string
	url         string
	body        []byte
	contentType string
	want        int
}

// throughput is one closed-loop measurement: conns connections, each
// sending its next request as soon as the last was answered.
type throughput struct {
	Requests int            `json:"requests"`
	OK       int            `json:"ok"`               // answered with the wanted status
	Failed   map[string]int `json:"failed,omitempty"` // the others, by status or error
	Seconds  float64        `json:"seconds"`
	// XCache counts the X-Cache header values answered (vegeta only).
	XCache map[string]int `json:"x_cache,omitempty"`
	// CPU is the CPU seconds the load generator spent: wrk's process, or
	// for vegeta the harness's own (it runs in it).
	CPU float64 `json:"cpu_seconds,omitempty"`
}

// Rate is the answers with the wanted status per second.
func (t throughput) Rate() float64 {
	if t.Seconds <= 0 {
		return 0
	}
	return float64(t.OK) / t.Seconds
}

func (t throughput) failures() int { return t.Requests - t.OK }

// loadGen drives closed-loop load.
type loadGen interface {
	Name() string
	Closed(ctx context.Context, req request, conns int, d time.Duration) (throughput, error)
}

// newLoadGen returns the named generator: vegeta (a Go library, in this
// process, always there), wrk (when installed), or auto, which takes wrk
// when it is on PATH and vegeta otherwise.
func newLoadGen(name string) (loadGen, error) {
	switch name {
	case "vegeta":
		return vegetaGen{}, nil
	case "wrk":
		path, err := exec.LookPath("wrk")
		if err != nil {
			return nil, fmt.Errorf("-loadgen wrk: %w (apt-get install -y wrk)", err)
		}
		return wrkGen{path: path}, nil
	case "auto":
		if path, err := exec.LookPath("wrk"); err == nil {
			return wrkGen{path: path}, nil
		}
		return vegetaGen{}, nil
	}
	return nil, fmt.Errorf("-loadgen: unknown generator %q (want auto, vegeta or wrk)", name)
}

type vegetaGen struct{}

func (vegetaGen) Name() string {
	return "vegeta " + vegetaVersion + " (in process)"
}

// vegetaVersion is the library version in go.mod.
const vegetaVersion = "v12.13.0"

// attackClient is the HTTP client of one vegeta attacker, and a func that
// closes its idle connections, for when the attack ends: vegeta keeps
// them, so each attack's pool would hold file descriptors of the harness
// and connection slots of the server (MAX_CONNS) until the server's idle
// timeout. Put vegeta.Client(client) first among the attacker's options:
// the others set this client's transport.
func attackClient() (*http.Client, func()) {
	tr := &http.Transport{DialContext: (&net.Dialer{KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost: vegeta.DefaultConnections}
	return &http.Client{Transport: tr, Timeout: vegeta.DefaultTimeout}, tr.CloseIdleConnections
}

func (vegetaGen) Closed(ctx context.Context, req request, conns int, d time.Duration) (throughput, error) {
	client, closeIdle := attackClient()
	defer closeIdle()
	atk := vegeta.NewAttacker(vegeta.Client(client),
		vegeta.Workers(uint64(conns)), vegeta.MaxWorkers(uint64(conns)),
		vegeta.Connections(conns), vegeta.MaxConnections(conns),
		vegeta.KeepAlive(true), vegeta.MaxBody(0), vegeta.Timeout(10*time.Second))
	stop := context.AfterFunc(ctx, func() { atk.Stop() })
	defer stop()
	target := vegeta.Target{Method: req.method, URL: req.url, Body: req.body, Header: http.Header{}}
	if req.contentType != "" {
		target.Header.Set("Content-Type", req.contentType)
	}
	t := throughput{Failed: map[string]int{}, XCache: map[string]int{}}
	cpuBefore, _ := cpuSeconds(os.Getpid())
	start := time.Now()
	// A rate of 0 is as fast as the workers go: a closed loop.
	for res := range atk.Attack(vegeta.NewStaticTargeter(target), vegeta.Rate{Freq: 0}, d, "") {
		t.Requests++
		switch {
		case int(res.Code) == req.want:
			t.OK++
		case res.Code != 0:
			t.Failed["status "+strconv.Itoa(int(res.Code))]++
		default:
			t.Failed[shortError(res.Error)]++
		}
		if v := res.Headers.Get("X-Cache"); v != "" {
			t.XCache[v]++
		}
	}
	t.Seconds = time.Since(start).Seconds()
	if cpuAfter, err := cpuSeconds(os.Getpid()); err == nil {
		t.CPU = cpuAfter - cpuBefore
	}
	if err := ctx.Err(); err != nil {
		return t, err
	}
	return t, nil
}

func shortError(s string) string {
	if len(s) > 80 {
		s = s[:80] + "…"
	}
	if s == "" {
		s = "error"
	}
	return s
}

type wrkGen struct{ path string }

func (g wrkGen) Name() string {
	out, _ := exec.Command(g.path, "-v").CombinedOutput()
	if first, _, _ := strings.Cut(string(out), " ["); strings.HasPrefix(first, "wrk ") {
		return first
	}
	return "wrk"
}

func (g wrkGen) Closed(ctx context.Context, req request, conns int, d time.Duration) (throughput, error) {
	secs := max(1, int((d+time.Second-1)/time.Second))
	args := []string{"-t", strconv.Itoa(min(conns, runtime.NumCPU())), "-c", strconv.Itoa(conns),
		"-d", strconv.Itoa(secs) + "s", "--timeout", "10s"}
	if req.method != http.MethodGet || len(req.body) > 0 {
		script, err := os.CreateTemp("", "bench-wrk-*.lua")
		if err != nil {
			return throughput{}, err
		}
		defer os.Remove(script.Name())
		fmt.Fprintf(script, "wrk.method = %q\nwrk.body = [==[%s]==]\n", req.method, req.body)
		if req.contentType != "" {
			fmt.Fprintf(script, "wrk.headers[\"Content-Type\"] = %q\n", req.contentType)
		}
		if err := script.Close(); err != nil {
			return throughput{}, err
		}
		args = append(args, "-s", script.Name())
	}
	args = append(args, req.url)
	cmd := exec.CommandContext(ctx, g.path, args...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return throughput{}, fmt.Errorf("wrk: %w\n%s", err, out)
	}
	t, err := parseWrk(string(out))
	t.CPU = (cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()).Seconds()
	return t, err
}

var (
	wrkTotal   = regexp.MustCompile(`(\d+) requests in ([0-9.]+)(ms|s|m|h)`)
	wrkNon2xx  = regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)`)
	wrkSockets = regexp.MustCompile(`Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
)

// parseWrk reads wrk's summary. wrk counts 2xx and 3xx answers alike, so
// any of them counts as the wanted status.
func parseWrk(out string) (throughput, error) {
	m := wrkTotal.FindStringSubmatch(out)
	if m == nil {
		return throughput{}, errors.New("wrk: no request count in its output:\n" + out)
	}
	n, _ := strconv.Atoi(m[1])
	d, err := time.ParseDuration(m[2] + m[3])
	if err != nil {
		return throughput{}, fmt.Errorf("wrk: duration %q: %w", m[2]+m[3], err)
	}
	t := throughput{Requests: n, OK: n, Seconds: d.Seconds(), Failed: map[string]int{}}
	if m := wrkNon2xx.FindStringSubmatch(out); m != nil {
		bad, _ := strconv.Atoi(m[1])
		t.OK -= bad
		t.Failed["non-2xx or 3xx"] = bad
	}
	if m := wrkSockets.FindStringSubmatch(out); m != nil {
		for i, what := range []string{"connect", "read", "write", "timeout"} {
			if k, _ := strconv.Atoi(m[i+1]); k > 0 {
				t.Failed["socket "+what] = k
				t.Requests += k
			}
		}
	}
	return t, nil
}
