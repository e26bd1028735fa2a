package redis_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/techlist/techlist/redis"
	"github.com/techlist/techlist/testenv"
)

// go-redis's own log lines come out through the service's logger, as JSON
// when it writes JSON, not as plain text on standard error.
func TestDriverLogGoesThroughSlog(t *testing.T) {
	var out testenv.Buffer
	redis.SetDriverLogger(slog.New(slog.NewJSONHandler(&out, nil)))
	t.Cleanup(func() { redis.SetDriverLogger(slog.Default()) })

	// Nothing needs to answer: the TTL is truncated, and logged, before
	// the command is sent.
	rdb := redis.NewClient(redis.Config{Addrs: []string{"127.0.0.1:1"}})
	defer rdb.Close()
	rdb.Set(context.Background(), "k", "v", time.Nanosecond)

	var line struct {
		Level, Msg, Driver string
	}
	for l := range strings.SplitSeq(strings.TrimSpace(out.String()), "\n") {
		if l == "" {
			continue
		}
		if err := json.Unmarshal([]byte(l), &line); err != nil {
			t.Fatalf("log line %q is not JSON: %v", l, err)
		}
		if strings.Contains(line.Msg, "truncating to 1ms") {
			if line.Level != "WARN" || line.Driver != "go-redis" {
				t.Errorf("got %q, want level WARN and driver go-redis", l)
			}
			t.Logf("driver line: %s", l)
			return
		}
	}
	t.Errorf("log: got %q, want go-redis's truncation warning as a JSON line", out.String())
}
