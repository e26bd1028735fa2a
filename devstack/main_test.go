package main

import (
	"bytes"
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/techlist/techlist/testenv"
)

func TestReadSettings(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		want    settings
		wantErr string
	}{
		{name: "defaults", want: settings{redisAddr: "127.0.0.1:6379", mysqlAddr: "127.0.0.1:3306"}},
		{name: "flags", args: []string{"-redis", "127.0.0.1:16379", "-mysql", "localhost:13306"},
			want: settings{redisAddr: "127.0.0.1:16379", mysqlAddr: "localhost:13306"}},
		{name: "env", env: map[string]string{"DEVSTACK_REDIS_ADDR": "[::1]:7000", "DEVSTACK_MYSQL_ADDR": "127.0.0.2:7001"},
			want: settings{redisAddr: "[::1]:7000", mysqlAddr: "127.0.0.2:7001"}},
		{name: "flags win over env", args: []string{"-redis", "127.0.0.1:1"}, env: map[string]string{"DEVSTACK_REDIS_ADDR": "127.0.0.1:2"},
			want: settings{redisAddr: "127.0.0.1:1", mysqlAddr: "127.0.0.1:3306"}},
		{name: "verbose", args: []string{"-v"}, want: settings{redisAddr: "127.0.0.1:6379", mysqlAddr: "127.0.0.1:3306", verbose: true}},
		{name: "only redis", args: []string{"-mysql", "off"}, want: settings{redisAddr: "127.0.0.1:6379"}},
		{name: "only mysql", args: []string{"-redis", "OFF"}, want: settings{mysqlAddr: "127.0.0.1:3306"}},
		{name: "both off", args: []string{"-redis", "off", "-mysql", "off"}, wantErr: "nothing to run"},
		{name: "not loopback", args: []string{"-mysql", "0.0.0.0:3306"}, wantErr: `-mysql="0.0.0.0:3306": the embedded stack listens on loopback addresses only`},
		{name: "a host name", args: []string{"-redis", "redis:6379"}, wantErr: "loopback addresses only"},
		{name: "no port", args: []string{"-redis", "127.0.0.1"}, wantErr: "want host:port"},
		{name: "stray argument", args: []string{"now"}, wantErr: `unexpected argument "now"`},
		{name: "unknown flag", args: []string{"-port", "1"}, wantErr: "flag provided but not defined"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			getenv := func(k string) string { return tt.env[k] }
			got, err := readSettings(tt.args, getenv, &bytes.Buffer{})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("got error %v, want none", err)
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestRefusesTakenPort: when something already listens on an address,
// devstack fails at once, naming the address, rather than sharing the
// port with it; and a server it had started is closed again.
func TestRefusesTakenPort(t *testing.T) {
	for _, which := range []string{"redis", "mysql"} {
		t.Run(which, func(t *testing.T) {
			taken, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer taken.Close()
			free := freeAddr(t)
			args := []string{"-redis", free, "-mysql", taken.Addr().String()}
			if which == "redis" {
				args = []string{"-redis", taken.Addr().String(), "-mysql", free}
			}
			var stdout bytes.Buffer
			errc := make(chan error, 1)
			go func() { errc <- run(t.Context(), args, noEnv, &stdout, &bytes.Buffer{}) }()
			select {
			case err = <-errc:
			case <-time.After(10 * time.Second):
				t.Fatal("run did not return within 10s with its port taken")
			}
			if err == nil || !errors.Is(err, syscall.EADDRINUSE) || !strings.Contains(err.Error(), taken.Addr().String()) {
				t.Fatalf("got error %v, want address already in use for %s", err, taken.Addr())
			}
			if strings.Contains(stdout.String(), "EMBEDDED DEVELOPMENT STACK") {
				t.Errorf("a stack that did not start announced itself:\n%s", stdout.String())
			}
			// The other server, if it was started, is closed again.
			ln, err := net.Listen("tcp", free)
			if err != nil {
				t.Fatalf("%s still taken after the failed start: %v", free, err)
			}
			ln.Close()
		})
	}
}

// TestOnlyOne starts only the server asked for.
func TestOnlyOne(t *testing.T) {
	redisAddr, mysqlAddr := freeAddr(t), freeAddr(t)
	out := startDevstack(t, "-redis", redisAddr, "-mysql", "off")
	if answers(mysqlAddr) {
		t.Errorf("something answers at %s though -mysql is off", mysqlAddr)
	}
	if s := out.String(); !strings.Contains(s, redisAddr) || strings.Contains(s, "embedded MySQL") {
		t.Errorf("the banner does not name only the embedded Redis:\n%s", s)
	}
}

// TestRedisBehaves checks the Redis behaviour the services rely on that a
// unit-test fake might not have: keys expire with the clock, and PUBLISH
// counts its receivers.
func TestRedisBehaves(t *testing.T) {
	addr := freeAddr(t)
	startDevstack(t, "-redis", addr, "-mysql", "off")
	ctx := t.Context()
	rdb := goredis.NewClient(&goredis.Options{Addr: addr})
	defer rdb.Close()

	if err := rdb.Set(ctx, "k", "v", 150*time.Millisecond).Err(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(400 * time.Millisecond)
	if err := rdb.Get(ctx, "k").Err(); !errors.Is(err, goredis.Nil) {
		t.Errorf("GET of a key past its TTL: got %v, want redis.Nil", err)
	}

	if n, err := rdb.Publish(ctx, "ch", "x").Result(); err != nil || n != 0 {
		t.Errorf("PUBLISH with no subscriber: got %d, %v; want 0", n, err)
	}
	sub := rdb.Subscribe(ctx, "ch")
	defer sub.Close()
	if _, err := sub.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	if n, err := rdb.Publish(ctx, "ch", "x").Result(); err != nil || n != 1 {
		t.Errorf("PUBLISH with one subscriber: got %d, %v; want 1", n, err)
	}
}

// startDevstack runs devstack through run with args, waits until every
// address it was given answers, and checks that it announced itself loudly
// first. At the end of the test it is stopped, and run must return nil
// and free its ports. It returns run's output.
func startDevstack(t *testing.T, args ...string) *testenv.Buffer {
	t.Helper()
	var addrs []string
	for i := 0; i+1 < len(args); i += 2 {
		if args[i+1] != off {
			addrs = append(addrs, args[i+1])
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	out := &testenv.Buffer{}
	errc := make(chan error, 1)
	go func() { errc <- run(ctx, args, noEnv, out, out) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-errc:
			if err != nil {
				t.Errorf("run returned %v after it was stopped, want nil", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("run did not return within 10s of being stopped")
		}
		for _, a := range addrs {
			if answers(a) {
				t.Errorf("something still answers at %s after devstack stopped", a)
			}
		}
		if t.Failed() {
			t.Logf("--- devstack output ---\n%s", out.String())
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for _, a := range addrs {
		for !answers(a) {
			select {
			case err := <-errc:
				errc <- err // for the cleanup
				t.Fatalf("devstack stopped before %s answered: %v\n%s", a, err, out.String())
			case <-time.After(20 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				t.Fatalf("nothing answers at %s 15s after devstack started\n%s", a, out.String())
			}
		}
	}
	// The banner comes out once everything listens, framed by two lines of
	// stars; wait for the second. (Counting "*****" would be satisfied by
	// the first line alone.)
	for strings.Count(out.String(), "msg=*****") < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("no banner 15s after devstack started\n%s", out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	checkBanner(t, out.String())
	return out
}

// checkBanner checks that the first lines of the output are warnings that
// say what this stack is, that its data lives only while make dev runs, and
// that it is not for production.
func checkBanner(t *testing.T, out string) {
	t.Helper()
	lines := strings.Split(out, "\n")
	var banner []string
	for _, l := range lines {
		if !strings.Contains(l, "level=WARN") {
			break
		}
		banner = append(banner, l)
	}
	text := strings.Join(banner, "\n")
	for _, want := range []string{"EMBEDDED DEVELOPMENT STACK", "DATA LIVES ONLY WHILE", "make dev", "NOT FOR PRODUCTION"} {
		if !strings.Contains(text, want) {
			t.Errorf("the first lines, all warnings, do not say %q:\n%s", want, out)
		}
	}
}

func noEnv(string) string { return "" }

// freeAddr returns a loopback address with a port that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	return "127.0.0.1:" + strconv.Itoa(testenv.FreePort(t))
}

// answers reports whether a TCP connection to addr is accepted.
func answers(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}
