package mysql_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/techlist/techlist/mysql"
	"github.com/techlist/techlist/testenv"
)

// The MySQL driver's own log lines come out through the service's logger,
// as JSON when it writes JSON, not as plain text on standard error.
func TestDriverLogGoesThroughSlog(t *testing.T) {
	var out testenv.Buffer
	mysql.SetDriverLogger(slog.New(slog.NewJSONHandler(&out, nil)))
	t.Cleanup(func() { mysql.SetDriverLogger(nil) })

	// A "server" that sends half a packet header and hangs up: the driver
	// logs "packets.go:… unexpected EOF".
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Write([]byte{0x4a, 0x00})
			c.Close()
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := mysql.Open(ctx, mysql.Config{Host: "127.0.0.1", Port: port, User: "root", Database: "x", Table: "t"}); err == nil {
		t.Fatal("Open on a server that hangs up: got nil error")
	}

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
		if strings.Contains(line.Msg, "unexpected EOF") {
			if line.Level != "WARN" || line.Driver != "mysql" {
				t.Errorf("got %q, want level WARN and driver mysql", l)
			}
			t.Logf("driver line: %s", l)
			return
		}
	}
	t.Errorf("log: got %q, want the driver's unexpected EOF as a JSON line", out.String())
}
