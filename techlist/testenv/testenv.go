// Package testenv gives tests their own piece of the real Redis and MySQL:
// a fresh database, a fresh key prefix and channel, removed afterwards, so
// tests run in parallel and leave nothing behind.
//
// When a server does not answer, the test is skipped with a line saying
// which, unless REQUIRE_SERVICES=1 or CI is set: then it fails, so CI
// cannot pass by skipping.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"
	"github.com/jmoiron/sqlx"
	goredis "github.com/redis/go-redis/v9"
	"github.com/techlist/techlist/mysql"
	"github.com/techlist/techlist/redis"
)

func required() bool {
	return os.Getenv("REQUIRE_SERVICES") == "1" || os.Getenv("CI") != ""
}

func unavailable(tb testing.TB, what string, err error) {
	tb.Helper()
	if required() {
		tb.Fatalf("%s is not reachable (REQUIRE_SERVICES or CI is set): %v", what, err)
	}
	tb.Skipf("%s is not reachable, skipping (set REQUIRE_SERVICES=1 to fail instead): %v", what, err)
}

// Suffix returns a short random name part, unique per call.
func Suffix() string {
	b := make([]byte, 5)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func getenv(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// MySQLConfig returns a config naming a database of the test's own, on the
// server at TEST_MYSQL_HOST:TEST_MYSQL_PORT (default 127.0.0.1:3306, root,
// no password). The database does not exist yet (the code under test
// creates it); it is dropped when the test ends.
func MySQLConfig(tb testing.TB) mysql.Config {
	tb.Helper()
	port, _ := strconv.Atoi(getenv("TEST_MYSQL_PORT", "3306"))
	cfg := mysql.Config{
		Host:     getenv("TEST_MYSQL_HOST", "127.0.0.1"),
		Port:     port,
		User:     getenv("TEST_MYSQL_USERNAME", "root"),
		Password: os.Getenv("TEST_MYSQL_PASSWORD"),
		Database: "test_" + Suffix(),
		Table:    "techlist",
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	admin, err := mysql.Open(ctx, mysql.Config{Host: cfg.Host, Port: cfg.Port, User: cfg.User, Password: cfg.Password, Database: "mysql", Table: "x"})
	if err != nil {
		unavailable(tb, "MySQL", err)
	}
	tb.Cleanup(func() {
		defer admin.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := admin.ExecContext(ctx, "DROP DATABASE IF EXISTS `"+cfg.Database+"`"); err != nil {
			tb.Errorf("drop test database %s: %v", cfg.Database, err)
		}
	})
	return cfg
}

// MySQL returns a migrated database of the test's own and its pool.
func MySQL(tb testing.TB) (mysql.Config, *sqlx.DB) {
	tb.Helper()
	cfg := MySQLConfig(tb)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, err := mysql.Open(ctx, cfg)
	if err != nil {
		tb.Fatalf("open test database: %v", err)
	}
	tb.Cleanup(func() { db.Close() })
	if err := mysql.Migrate(ctx, cfg); err != nil {
		tb.Fatalf("migrate test database: %v", err)
	}
	return cfg, db
}

// Names are the Redis names a test may use without meeting another test.
type Names struct {
	Prefix  string // the cache prefix (REDIS_CACHE)
	Channel string // the channel (REDIS_CHANNEL)
}

// RedisAddr is the Redis server tests use: TEST_REDIS_ADDR, default
// 127.0.0.1:6379.
func RedisAddr() string { return getenv("TEST_REDIS_ADDR", "127.0.0.1:6379") }

// Redis returns a client of the test's Redis and names of the test's own.
// Keys under the prefix are deleted when the test ends.
func Redis(tb testing.TB) (goredis.UniversalClient, Names) {
	tb.Helper()
	rdb := redis.NewClient(redis.Config{Addrs: []string{RedisAddr()}})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := rdb.Ping(ctx).Err(); err != nil {
		rdb.Close()
		unavailable(tb, "Redis at "+RedisAddr(), err)
	}
	s := Suffix()
	names := Names{Prefix: "test-" + s, Channel: "test-" + s}
	tb.Cleanup(func() {
		defer rdb.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := deleteKeys(ctx, rdb, names.Prefix); err != nil {
			tb.Errorf("clean test keys of %s: %v", names.Prefix, err)
			return
		}
		// Anything left means the cleanup misses a key name the code makes.
		if left, err := keysOf(ctx, rdb, names.Prefix); err != nil || len(left) > 0 {
			tb.Errorf("test keys left after cleanup: %q (%v); want none", left, err)
		}
	})
	return rdb, names
}

// keyPatterns match every key named after prefix: the prefix itself, and
// the prefix as (the start of) a cluster hash tag, as in the streams'
// "{<stream>}:appended:<id>" markers.
func keyPatterns(prefix string) []string { return []string{prefix + "*", "{" + prefix + "*"} }

// keysOf lists the keys named after prefix.
func keysOf(ctx context.Context, rdb goredis.UniversalClient, prefix string) ([]string, error) {
	var keys []string
	for _, pattern := range keyPatterns(prefix) {
		iter := rdb.Scan(ctx, 0, pattern, 1000).Iterator()
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		if err := iter.Err(); err != nil {
			return keys, fmt.Errorf("scan %s: %w", pattern, err)
		}
	}
	return keys, nil
}

// deleteKeys deletes the keys named after prefix.
func deleteKeys(ctx context.Context, rdb goredis.UniversalClient, prefix string) error {
	keys, err := keysOf(ctx, rdb, prefix)
	if err != nil {
		return err
	}
	for len(keys) > 0 {
		n := min(len(keys), 500)
		if err := rdb.Del(ctx, keys[:n]...).Err(); err != nil {
			return fmt.Errorf("delete %d keys: %w", n, err)
		}
		keys = keys[n:]
	}
	return nil
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(tb testing.TB) int {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("find a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// EventuallyLimit is how long Eventually waits.
const EventuallyLimit = 20 * time.Second

// Eventually calls check until it returns true, failing the test after
// EventuallyLimit. It polls often at first (from 1 ms), then every 50 ms.
func Eventually(tb testing.TB, what string, check func() bool) {
	tb.Helper()
	deadline := time.Now().Add(EventuallyLimit)
	pause := time.Millisecond
	for !check() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %s waiting for %s", EventuallyLimit, what)
		}
		time.Sleep(pause)
		pause = min(2*pause, 50*time.Millisecond)
	}
}

// WaitStatus polls url until it answers want, failing the test after limit,
// or at once when stopped (nil: never) yields a value or is closed: what
// serves url has stopped, and the value (run's error) says how.
func WaitStatus[T any](tb testing.TB, url string, want int, limit time.Duration, stopped <-chan T) {
	tb.Helper()
	if err := PollStatus(context.Background(), url, want, limit, stopped); err != nil {
		tb.Fatal(err)
	}
}

// PollStatus polls url until it answers want, every 20 ms, and returns an
// error after limit, when ctx ends, or at once when stopped (nil: never)
// yields a value or is closed.
func PollStatus[T any](ctx context.Context, url string, want int, limit time.Duration, stopped <-chan T) error {
	client := http.Client{Timeout: time.Second}
	deadline := time.Now().Add(limit)
	last := "no answer"
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == want {
				return nil
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("GET %s: got %s, want %d within %s", url, last, want, limit)
		}
		select {
		case v := <-stopped:
			return fmt.Errorf("stopped (%v) before %s answered %d", v, url, want)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}
