// Package e2e runs the three services as the programs they are, built from
// this repository, against the real Redis and MySQL, and checks the whole
// flow from the outside: through the client-app's form, the API, the seed
// routes, and a real browser.
package e2e

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/techlist/techlist"
	"github.com/techlist/techlist/redis"
	"github.com/techlist/techlist/testenv"
	"github.com/techlist/techlist/testenv/stack"
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
	if err := stack.Build(context.Background(), dir, true, "./api-server", "./worker-server", "./client-app"); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	binDir = dir
	return m.Run()
}

// Stack is one running set of the three services, on ports, a database, a
// channel and a cache prefix of its own.
type Stack = stack.Stack

// startStack starts the three services on a database, a channel and a
// cache prefix of the test's own, and waits until each is ready. extra
// overrides or adds environment variables for all three. At the end of the
// test each gets SIGTERM and must exit 0; their logs are printed when the
// test failed.
func startStack(t *testing.T, extra map[string]string) *Stack {
	t.Helper()
	return stack.Services(t, binDir, stackEnv(t), extra)
}

// stackEnv is the environment startStack gives the services: a database,
// a channel and a cache prefix of the test's own.
func stackEnv(t *testing.T) map[string]string {
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
		"TASK_COST":      "20ms",
	}
	return common
}

// watchStored subscribes to the worker's tech.created events (the worker
// publishes them after committing the rows and invalidating the cache) and
// returns a function that waits, 20 seconds at most, until the tech with
// the given id was announced. Call it before posting.
func watchStored(t *testing.T, s *Stack) func(id string) techlist.Tech {
	t.Helper()
	events := watchEvents(t, s)
	return func(id string) techlist.Tech {
		t.Helper()
		return events(id).Tech
	}
}

// watchEvents is watchStored with the whole event (its trace context too).
func watchEvents(t *testing.T, s *Stack) func(id string) techlist.Event {
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
	seen := map[string]techlist.Event{}
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
				seen[ev.Tech.ID] = ev
				mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() { cancel(); sub.Close(); <-done })
	return func(id string) techlist.Event {
		t.Helper()
		var ev techlist.Event
		testenv.Eventually(t, "tech.created for "+id, func() bool {
			mu.Lock()
			defer mu.Unlock()
			var ok bool
			ev, ok = seen[id]
			return ok
		})
		return ev
	}
}
