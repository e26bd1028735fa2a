package service

import (
	"context"
	"io"
	"net/http"
	"testing"

	"github.com/techlist/techlist/config"
)

func TestAdminAddr(t *testing.T) {
	for _, tt := range []struct {
		value, want string
		bad         bool
	}{{"", "", false}, {"127.0.0.1:6060", "127.0.0.1:6060", false}, {":6060", ":6060", false}, {"6060", "", true}, {"localhost", "", true}} {
		env := config.NewEnv(func(string) string { return tt.value })
		got := AdminAddr(env)
		if bad := env.Err() != nil; bad != tt.bad || (!bad && got != tt.want) {
			t.Errorf("ADMIN_ADDR=%q: got %q, error %v; want %q, error %v", tt.value, got, env.Err(), tt.want, tt.bad)
		}
	}
}

// TestMaxConnsAndStreamsFit: MAX_CONNS defaults to 0, no bound; the live streams must fit below it, since each holds a connection.
func TestMaxConnsAndStreamsFit(t *testing.T) {
	for _, tt := range []struct {
		maxConns      string
		streams, want int
		bad           bool
	}{{"", 512, 0, false}, {"0", 100_000, 0, false}, {"2048", 1024, 2048, false}, {"1024", 1024, 1024, true}, {"100", 100, 100, true}, {"-1", 1, 0, true}} {
		env := config.NewEnv(func(name string) string {
			if name == "MAX_CONNS" {
				return tt.maxConns
			}
			return ""
		})
		got := MaxConns(env)
		StreamsFit(env, tt.streams, got)
		if bad := env.Err() != nil; bad != tt.bad || (!bad && got != tt.want) {
			t.Errorf("MAX_CONNS=%q with %d streams: got %d, error %v; want %d, error %v", tt.maxConns, tt.streams, got, env.Err(), tt.want, tt.bad)
		}
	}
}

// The admin listener serves pprof, and only pprof; off, it opens nothing.
func TestServeAdmin(t *testing.T) {
	ctx := context.Background()
	off, err := ServeAdmin(ctx, "", discard)
	if err != nil || off.Addr() != "" || off.Close() != nil {
		t.Fatalf("ServeAdmin with no address: %v, listening on %q", err, off.Addr())
	}
	admin, err := ServeAdmin(ctx, "127.0.0.1:0", discard)
	if err != nil {
		t.Fatal(err)
	}
	addr := admin.Addr()
	for path, want := range map[string]int{"/debug/pprof/": 200, "/debug/pprof/cmdline": 200, "/healthz": 404, "/metrics": 404} {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s: got %d, want %d", path, resp.StatusCode, want)
		}
	}
	if err := admin.Close(); err != nil {
		t.Errorf("admin listener after stop: %v", err)
	}
}
