package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jmoiron/sqlx"
	goredis "github.com/redis/go-redis/v9"
	"github.com/techlist/techlist/config"
	"github.com/techlist/techlist/mysql"
	"github.com/techlist/techlist/redis"
)

// world is what a run owns: the built programs, a database and a key prefix
// of its own on the real servers, and every process it started. close
// gives it all back.
type world struct {
	root  string
	tmp   string // the programs, the logs, and an empty working directory
	mysql mysql.Config
	db    *sqlx.DB
	redis redis.Config
	rdb   goredis.UniversalClient
	// names starts every key, channel and stream of the run.
	names string
	procs []*process
	// extraEnv is added to every service's environment (-env).
	extraEnv map[string]string
	logf     func(string, ...any)
}

// newWorld builds the services (without -race) and connects to MySQL and
// Redis, found through the services' own variables (MYSQL_HOST, MYSQL_PORT,
// MYSQL_USERNAME, MYSQL_PASSWORD, REDIS_ADDRS or REDIS_HOST and
// REDIS_PORT, REDIS_USERNAME, REDIS_PASSWORD), with their defaults.
func newWorld(ctx context.Context, root string, getenv func(string) string, extraEnv map[string]string, logf func(string, ...any)) (w *world, err error) {
	env := config.NewEnv(getenv)
	mcfg := mysql.ConfigFromEnv(env)
	rcfg := redis.ConfigFromEnv(env)
	if err := env.Err(); err != nil {
		return nil, err
	}
	suffix := randomSuffix()
	mcfg.Database, mcfg.Table = "bench_"+suffix, "techlist"
	w = &world{root: root, mysql: mcfg, redis: rcfg, names: "bench-" + suffix, extraEnv: extraEnv, logf: logf}
	defer func() {
		if err != nil {
			w.close(false)
		}
	}()
	if w.tmp, err = os.MkdirTemp("", "techlist-bench-"); err != nil {
		return nil, err
	}
	for _, dir := range []string{"bin", "logs", "run"} {
		if err := os.Mkdir(filepath.Join(w.tmp, dir), 0o755); err != nil {
			return nil, err
		}
	}
	logf("building api-server and worker-server (no -race)")
	build := exec.CommandContext(ctx, "go", "build", "-o", filepath.Join(w.tmp, "bin")+string(filepath.Separator), "./api-server", "./worker-server")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("build the services: %w\n%s", err, out)
	}
	openCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if w.db, err = mysql.Open(openCtx, mcfg); err != nil {
		return nil, fmt.Errorf("open a database of the run's own: %w", err)
	}
	if err := mysql.Migrate(openCtx, mcfg); err != nil {
		return nil, err
	}
	w.rdb = redis.NewClient(rcfg)
	if err := redis.Ping(openCtx, w.rdb); err != nil {
		return nil, err
	}
	logf("database %s, keys and channels %s*", mcfg.Database, w.names)
	return w, nil
}

// close stops every process still running, drops the run's database,
// deletes its keys and removes the programs; the logs are kept when the run
// failed.
func (w *world) close(keepLogs bool) error {
	var errs []error
	for i := len(w.procs) - 1; i >= 0; i-- {
		if err := w.procs[i].stop(); err != nil {
			errs = append(errs, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if w.db != nil {
		if _, err := w.db.ExecContext(ctx, "DROP DATABASE IF EXISTS `"+w.mysql.Database+"`"); err != nil {
			errs = append(errs, fmt.Errorf("drop database %s: %w", w.mysql.Database, err))
		}
		w.db.Close()
	}
	if w.rdb != nil {
		if err := deleteKeys(ctx, w.rdb, w.names+"*"); err != nil {
			errs = append(errs, err)
		}
		w.rdb.Close()
	}
	if w.tmp != "" {
		if keepLogs {
			w.logf("logs kept in %s", filepath.Join(w.tmp, "logs"))
			os.RemoveAll(filepath.Join(w.tmp, "bin"))
		} else {
			os.RemoveAll(w.tmp)
		}
	}
	return errors.Join(errs...)
}

func deleteKeys(ctx context.Context, rdb goredis.UniversalClient, match string) error {
	iter := rdb.Scan(ctx, 0, match, 1000).Iterator()
	var keys []string
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		return fmt.Errorf("list keys %s: %w", match, err)
	}
	for len(keys) > 0 {
		n := min(len(keys), 500)
		if err := rdb.Del(ctx, keys[:n]...).Err(); err != nil {
			return fmt.Errorf("delete keys %s: %w", match, err)
		}
		keys = keys[n:]
	}
	return nil
}

// serviceEnv is the environment every service of the run gets: the run's
// database and Redis, and TASK_COST=0; then the -env flags; then extra,
// which wins.
func (w *world) serviceEnv(extra map[string]string) map[string]string {
	env := map[string]string{
		"MYSQL_HOST":     w.mysql.Host,
		"MYSQL_PORT":     strconv.Itoa(w.mysql.Port),
		"MYSQL_USERNAME": w.mysql.User,
		"MYSQL_PASSWORD": w.mysql.Password,
		"MYSQL_DATABASE": w.mysql.Database,
		"MYSQL_TABLE":    w.mysql.Table,
		"REDIS_ADDRS":    strings.Join(w.redis.Addrs, ","),
		"REDIS_USERNAME": w.redis.Username,
		"REDIS_PASSWORD": w.redis.Password,
		"REDIS_CHANNEL":  w.names,
		"REDIS_CACHE":    w.names,
		"TASK_COST":      "0",
		"LOG_FORMAT":     "json",
	}
	for k, v := range w.extraEnv {
		env[k] = v
	}
	for k, v := range extra {
		env[k] = v
	}
	return env
}

// process is one program the run started.
type process struct {
	name    string
	cmd     *exec.Cmd
	url     string
	logPath string
	done    chan struct{}
	err     error // how it exited, once done is closed
	peak    int64 // VmHWM in bytes, read just before it was stopped
}

// start runs the program bin (a path) on a free port as name, with env
// only (no stray .env is read: it runs in an empty folder). It does not
// wait until the program is ready.
func (w *world) start(name, bin string, args []string, env map[string]string) (*process, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "PORT=" + strconv.Itoa(port)}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Dir = filepath.Join(w.tmp, "run")
	logPath := filepath.Join(w.tmp, "logs", fmt.Sprintf("%02d-%s.log", len(w.procs)+1, name))
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &process{name: name, cmd: cmd, url: "http://127.0.0.1:" + strconv.Itoa(port), logPath: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		logFile.Close()
		close(p.done)
	}()
	w.procs = append(w.procs, p)
	return p, nil
}

// service starts one of the built services and waits until it is ready.
func (w *world) service(ctx context.Context, name, program string, env map[string]string) (*process, error) {
	p, err := w.start(name, filepath.Join(w.tmp, "bin", program), nil, env)
	if err != nil {
		return nil, err
	}
	if err := p.waitReady(ctx, "/readyz", 60*time.Second); err != nil {
		return nil, err
	}
	return p, nil
}

// waitReady polls path until it answers 200.
func (p *process) waitReady(ctx context.Context, path string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	client := &http.Client{Timeout: time.Second}
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.url+path, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-p.done:
			return fmt.Errorf("%s exited before it was ready (%v); its log ends:\n%s", p.name, p.err, p.logTail())
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready at %s after %s; its log ends:\n%s", p.name, p.url+path, limit, p.logTail())
		}
	}
}

// stop reads the process's peak memory, then sends SIGTERM and waits for
// it to exit, 20 seconds at most. A service that does not exit 0 is an
// error: each promises a graceful shutdown.
func (p *process) stop() error {
	select {
	case <-p.done:
		return nil
	default:
	}
	if peak, err := p.peakRSS(); err == nil {
		p.peak = peak
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("%s did not exit within 20s of SIGTERM", p.name)
	}
	if p.err != nil {
		return fmt.Errorf("%s exited with %v after SIGTERM; its log ends:\n%s", p.name, p.err, p.logTail())
	}
	return nil
}

// peakRSS returns the process's peak resident set size (VmHWM), in bytes,
// while it runs; after stop, the value read then.
func (p *process) peakRSS() (int64, error) {
	select {
	case <-p.done:
		if p.peak > 0 {
			return p.peak, nil
		}
		return 0, fmt.Errorf("%s exited before its memory was read", p.name)
	default:
	}
	return readVmHWM(p.cmd.Process.Pid)
}

func readVmHWM(pid int) (int64, error) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("parse VmHWM %q: %w", rest, err)
			}
			return kb * 1024, nil
		}
	}
	return 0, fmt.Errorf("no VmHWM in /proc/%d/status", pid)
}

func (p *process) logTail() string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return err.Error()
	}
	if len(b) > 3000 {
		b = b[len(b)-3000:]
	}
	return string(b)
}

// metric returns the value of one series (name and labels exactly as the
// Prometheus text format writes them, e.g. `worker_messages_total{result="stored"}`)
// from the process's /metrics, and 0 when the series is not there yet.
func (p *process) metric(ctx context.Context, series string) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.url+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("%s/metrics: %s", p.url, resp.Status)
	}
	return findSeries(bufio.NewScanner(resp.Body), series)
}

func findSeries(sc *bufio.Scanner, series string) (float64, error) {
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			return strconv.ParseFloat(strings.TrimSpace(rest), 64)
		}
	}
	return 0, sc.Err()
}

// repoRoot is the folder holding go.work.
func repoRoot() (string, error) {
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

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func randomSuffix() string {
	b := make([]byte, 5)
	rand.Read(b)
	return hex.EncodeToString(b)
}
