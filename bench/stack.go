package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	goredis "github.com/redis/go-redis/v9"
	"github.com/techlist/techlist/config"
	"github.com/techlist/techlist/mysql"
	"github.com/techlist/techlist/redis"
	"github.com/techlist/techlist/testenv"
	"github.com/techlist/techlist/testenv/stack"
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
	suffix := testenv.Suffix()
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
	if err := stack.Build(ctx, filepath.Join(w.tmp, "bin"), false, "./api-server", "./worker-server"); err != nil {
		return nil, err
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
	*stack.Process
	peak int64 // VmHWM in bytes, read just before it was stopped
}

// start runs the program bin (a path) as name with env only (no stray .env
// is read: it runs in an empty folder), its output to a log file of the
// run. It returns once the program listens, not once it is ready.
func (w *world) start(name, bin string, args []string, env map[string]string) (*process, error) {
	logPath := filepath.Join(w.tmp, "logs", fmt.Sprintf("%02d-%s.log", len(w.procs)+1, name))
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	sp, err := stack.Start(stack.Command{Name: name, Path: bin, Args: args, Env: stack.Environ(env),
		Dir: filepath.Join(w.tmp, "run"), Logs: logFile})
	if err != nil {
		logFile.Close()
		return nil, err
	}
	go func() {
		<-sp.Done()
		logFile.Close()
	}()
	p := &process{Process: sp}
	w.procs = append(w.procs, p)
	return p, nil
}

// service starts one of the built services and waits until it is ready.
func (w *world) service(ctx context.Context, name, program string, env map[string]string) (*process, error) {
	p, err := w.start(name, filepath.Join(w.tmp, "bin", program), nil, env)
	if err != nil {
		return nil, err
	}
	if err := p.WaitReady(ctx, "/readyz", 60*time.Second); err != nil {
		return nil, err
	}
	return p, nil
}

// stop reads the process's peak memory, then sends SIGTERM and waits for
// it to exit, 20 seconds at most. A service that does not exit 0 is an
// error: each promises a graceful shutdown. One already gone is left be.
func (p *process) stop() error {
	if p.Exited() {
		return nil
	}
	if peak, err := p.peakRSS(); err == nil {
		p.peak = peak
	}
	return p.Stop(20 * time.Second)
}

// peakRSS returns the process's peak resident set size (VmHWM), in bytes,
// while it runs; after stop, the value read then.
func (p *process) peakRSS() (int64, error) {
	if p.Exited() {
		if p.peak > 0 {
			return p.peak, nil
		}
		return 0, fmt.Errorf("%s exited before its memory was read", p.Name)
	}
	return readVmHWM(p.Pid())
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

// metric returns the value of one series (name and labels exactly as the
// Prometheus text format writes them, e.g. `worker_messages_total{result="stored"}`)
// from the process's /metrics, and 0 when the series is not there yet.
func (p *process) metric(ctx context.Context, series string) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.URL+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	// Uncompressed: the drain polls every 25 ms, and gzipping each answer
	// cost the worker being measured several percent of its CPU.
	req.Header.Set("Accept-Encoding", "identity")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("%s/metrics: %s", p.URL, resp.Status)
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
