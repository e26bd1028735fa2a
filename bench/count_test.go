package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/techlist/techlist"
	"github.com/techlist/techlist/redis"
	"github.com/techlist/techlist/testenv"
)

func mysqlPacket(seq byte, payload []byte) []byte {
	n := len(payload)
	return append([]byte{byte(n), byte(n >> 8), byte(n >> 16), seq}, payload...)
}

func TestMySQLCommands(t *testing.T) {
	var stream []byte
	stream = append(stream, mysqlPacket(1, []byte("login packet, not a command"))...)
	stream = append(stream, mysqlPacket(0, append([]byte{comStmtPrepare}, "  select id FROM t WHERE id = ?"...))...)
	stream = append(stream, mysqlPacket(0, []byte{comStmtExecute, 1, 0, 0, 0})...)
	stream = append(stream, mysqlPacket(0, []byte{0x19, 1, 0, 0, 0})...)
	stream = append(stream, mysqlPacket(0, append([]byte{comQuery}, "COMMIT"...))...)
	stream = append(stream, mysqlPacket(0, []byte{0x0e})...)
	stream = append(stream, mysqlPacket(0, append([]byte{comQuery}, strings.Repeat("x", 100000)...))...)
	stream = append(stream, mysqlPacket(0, []byte{0x42})...)
	got := map[string]int{}
	err := mysqlCommands(bufio.NewReader(bytes.NewReader(stream)), func(s string) { got[s]++ })
	if !errors.Is(err, io.EOF) {
		t.Fatalf("got error %v, want EOF at the end", err)
	}
	want := map[string]int{"COM_STMT_PREPARE SELECT": 1, "COM_STMT_EXECUTE": 1, "COM_STMT_CLOSE": 1,
		"COM_QUERY COMMIT": 1, "COM_PING": 1, "COM_QUERY " + strings.Repeat("X", 32): 1, "COM_0x42": 1}
	if !equalCounts(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if q := sumWhere(got, isMySQLQuery); q != 3 {
		t.Errorf("queries: got %d, want 3 (one execute, two text queries)", q)
	}
}

func TestRESPCommands(t *testing.T) {
	stream := "*2\r\n$5\r\nhello\r\n$1\r\n3\r\n" +
		"*3\r\n$4\r\nHGET\r\n$14\r\nbench:{list}:p\r\n$3\r\n50:\r\n" +
		"*2\r\n$3\r\nGET\r\n$0\r\n\r\n" +
		"*6\r\n$7\r\nevalsha\r\n$3\r\nabc\r\n$1\r\n2\r\n$1\r\na\r\n$1\r\nb\r\n$9\r\nline\r\nbrk\r\n" +
		"PING\r\n"
	got := map[string]int{}
	err := respCommands(bufio.NewReader(strings.NewReader(stream)), func(s string) { got[s]++ })
	if !errors.Is(err, io.EOF) {
		t.Fatalf("got error %v, want EOF at the end", err)
	}
	want := map[string]int{"HELLO": 1, "HGET": 1, "GET": 1, "EVALSHA": 1, "PING": 1}
	if !equalCounts(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if w := sumWhere(got, isRedisWrite); w != 1 {
		t.Errorf("writes: got %d, want 1", w)
	}
	if err := respCommands(bufio.NewReader(strings.NewReader("*1\r\n+oops\r\n")), func(string) {}); err == nil || errors.Is(err, io.EOF) {
		t.Errorf("a malformed command: got %v, want a parse error", err)
	}
}

func equalCounts(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// The proxy forwards both ways unchanged and counts what the client sent.
func TestCountingProxyForwardsAndCounts(t *testing.T) {
	upstream, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer upstream.Close()
	go func() {
		c, err := upstream.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		r := bufio.NewReader(c)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			c.Write([]byte("+echo " + line))
		}
	}()
	p, err := newCountingProxy(upstream.Addr().String(), respCommands)
	if err != nil {
		t.Fatal(err)
	}
	defer p.close()
	c, err := net.Dial("tcp", p.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReader(c)
	for _, cmd := range []string{"PING\r\n", "ping\r\n", "GET x\r\n"} {
		if _, err := c.Write([]byte(cmd)); err != nil {
			t.Fatal(err)
		}
		got, err := r.ReadString('\n')
		if err != nil || got != "+echo "+cmd {
			t.Fatalf("got %q, %v; want %q", got, err, "+echo "+cmd)
		}
	}
	// The proxy forwards a command's bytes as it parses them, so the echo
	// can arrive before the command is counted: wait for the count.
	want := map[string]int{"PING": 2, "GET": 1}
	got := p.snapshot()
	for deadline := time.Now().Add(5 * time.Second); !equalCounts(got, want) && time.Now().Before(deadline); got = p.snapshot() {
		time.Sleep(time.Millisecond)
	}
	if !equalCounts(got, want) {
		t.Errorf("got %v, want PING 2, GET 1", got)
	}
}

// The harness fills the stream itself, with the field the api-server's
// publisher uses, so that the worker reads the entries as its own.
func TestStreamPayloadFieldIsThePublishers(t *testing.T) {
	rdb, names := testenv.Redis(t)
	ctx := context.Background()
	env := techlist.NewEnvelope(newID(), "field check", time.Now())
	if err := redis.NewStreamPublisher(rdb, names.Prefix+"-stream", 10, time.Minute).Publish(ctx, env); err != nil {
		t.Fatal(err)
	}
	msgs, err := rdb.XRange(ctx, names.Prefix+"-stream", "-", "+").Result()
	if err != nil || len(msgs) != 1 {
		t.Fatalf("got %v, %v; want one entry", msgs, err)
	}
	if _, ok := msgs[0].Values[streamPayloadField]; !ok || len(msgs[0].Values) != 1 {
		t.Errorf("entry fields %v, want only %q", msgs[0].Values, streamPayloadField)
	}
}
