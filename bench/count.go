package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// countingProxy forwards TCP connections to upstream unchanged and counts
// the commands the clients send, as its parser reads them from each
// client's stream. Bytes are forwarded as they arrive, before the parser
// looks at them, so the proxy adds no waiting of its own.
type countingProxy struct {
	ln       net.Listener
	upstream string
	parse    func(r *bufio.Reader, count func(string)) error

	mu        sync.Mutex
	counts    map[string]int
	badConns  int
	conns     map[net.Conn]struct{}
	wg        sync.WaitGroup
	closeOnce sync.Once
}

func newCountingProxy(upstream string, parse func(*bufio.Reader, func(string)) error) (*countingProxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("counting proxy: %w", err)
	}
	p := &countingProxy{ln: ln, upstream: upstream, parse: parse, counts: map[string]int{}, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.serve()
	return p, nil
}

func (p *countingProxy) addr() string { return p.ln.Addr().String() }

func (p *countingProxy) port() string { return strconv.Itoa(p.ln.Addr().(*net.TCPAddr).Port) }

func (p *countingProxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return // closed
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.handle(c)
		}()
	}
}

func (p *countingProxy) track(c net.Conn, open bool) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if open {
		if p.conns == nil {
			return false // closing
		}
		p.conns[c] = struct{}{}
	} else if p.conns != nil {
		delete(p.conns, c)
	}
	return true
}

func (p *countingProxy) handle(client net.Conn) {
	defer client.Close()
	server, err := net.Dial("tcp", p.upstream)
	if err != nil {
		return
	}
	defer server.Close()
	if !p.track(client, true) || !p.track(server, true) {
		return
	}
	defer p.track(client, false)
	defer p.track(server, false)
	back := make(chan struct{})
	go func() {
		defer close(back)
		io.Copy(client, server)
		client.Close() // the server hung up: so does the client's side
	}()
	r := bufio.NewReaderSize(io.TeeReader(client, server), 64<<10)
	err = p.parse(r, p.count)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && !isReset(err) {
		p.mu.Lock()
		p.badConns++
		p.mu.Unlock()
		io.Copy(io.Discard, r) // keep forwarding, uncounted
	}
	server.Close()
	<-back
}

func isReset(err error) bool {
	return strings.Contains(err.Error(), "connection reset") || strings.Contains(err.Error(), "broken pipe")
}

func (p *countingProxy) count(name string) {
	p.mu.Lock()
	p.counts[name]++
	p.mu.Unlock()
}

// snapshot returns the counts so far.
func (p *countingProxy) snapshot() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]int, len(p.counts))
	for k, v := range p.counts {
		out[k] = v
	}
	return out
}

// parseErrors is how many connections carried bytes the parser could not read.
func (p *countingProxy) parseErrors() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.badConns
}

// close stops accepting, cuts every connection and waits for the
// goroutines.
func (p *countingProxy) close() {
	p.closeOnce.Do(func() {
		p.ln.Close()
		p.mu.Lock()
		for c := range p.conns {
			c.Close()
		}
		p.conns = nil
		p.mu.Unlock()
		p.wg.Wait()
	})
}

func delta(before, after map[string]int) map[string]int {
	out := map[string]int{}
	for k, v := range after {
		if d := v - before[k]; d != 0 {
			out[k] = d
		}
	}
	return out
}

func sumWhere(counts map[string]int, keep func(string) bool) int {
	n := 0
	for k, v := range counts {
		if keep(k) {
			n += v
		}
	}
	return n
}

// describeCounts lists counts divided by per, by name.
func describeCounts(counts map[string]int, per int) string {
	if len(counts) == 0 {
		return "none"
	}
	var parts []string
	for k, v := range counts {
		parts = append(parts, fmt.Sprintf("%s %s", k, strconv.FormatFloat(float64(v)/float64(per), 'f', -1, 64)))
	}
	slices.Sort(parts)
	return strings.Join(parts, ", ")
}

// mysqlCommands reads the client side of the MySQL protocol: packets of a
// 3-byte little-endian length, a sequence number and the payload. A
// command is a packet with sequence number 0; its first byte says which.
// Statements are named with their first word, e.g. "COM_STMT_PREPARE SELECT".
// The login packet (sequence 1) and anything else within an exchange are
// skipped. It assumes no TLS and no compression, as the services connect.
func mysqlCommands(r *bufio.Reader, count func(string)) error {
	var hdr [4]byte
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return err
		}
		n := int(hdr[0]) | int(hdr[1])<<8 | int(hdr[2])<<16
		if hdr[3] != 0 || n == 0 {
			if _, err := r.Discard(n); err != nil {
				return err
			}
			continue
		}
		cmd, err := r.ReadByte()
		if err != nil {
			return err
		}
		n--
		name, ok := mysqlCommandNames[cmd]
		if !ok {
			name = fmt.Sprintf("COM_0x%02x", cmd)
		}
		if cmd == comQuery || cmd == comStmtPrepare {
			head := make([]byte, min(n, 32))
			if _, err := io.ReadFull(r, head); err != nil {
				return err
			}
			n -= len(head)
			if f := bytes.Fields(head); len(f) > 0 {
				name += " " + strings.ToUpper(string(f[0]))
			}
		}
		if _, err := r.Discard(n); err != nil {
			return err
		}
		count(name)
	}
}

const (
	comQuery       = 0x03
	comStmtPrepare = 0x16
	comStmtExecute = 0x17
)

var mysqlCommandNames = map[byte]string{
	0x01: "COM_QUIT", 0x02: "COM_INIT_DB", comQuery: "COM_QUERY", 0x0e: "COM_PING",
	comStmtPrepare: "COM_STMT_PREPARE", comStmtExecute: "COM_STMT_EXECUTE", 0x19: "COM_STMT_CLOSE",
	0x1a: "COM_STMT_RESET", 0x1f: "COM_RESET_CONNECTION",
}

// isMySQLQuery reports whether a counted command runs a statement.
func isMySQLQuery(name string) bool {
	return strings.HasPrefix(name, "COM_QUERY") || name == "COM_STMT_EXECUTE"
}

// respCommands reads the client side of the Redis protocol: each command
// an array of bulk strings (or an inline command, one line). It counts
// commands by name, upper-cased.
func respCommands(r *bufio.Reader, count func(string)) error {
	for {
		line, err := readCRLF(r)
		if err != nil {
			return err
		}
		if line == "" {
			continue
		}
		if line[0] != '*' {
			if f := strings.Fields(line); len(f) > 0 {
				count(strings.ToUpper(f[0]))
			}
			continue
		}
		n, err := strconv.Atoi(line[1:])
		if err != nil {
			return fmt.Errorf("resp: array length %q", line)
		}
		name := ""
		for i := range n {
			l, err := readCRLF(r)
			if err != nil {
				return err
			}
			if l == "" || l[0] != '$' {
				return fmt.Errorf("resp: want a bulk string, got %q", l)
			}
			size, err := strconv.Atoi(l[1:])
			if err != nil || size < 0 {
				return fmt.Errorf("resp: bulk length %q", l)
			}
			if i == 0 {
				b := make([]byte, size)
				if _, err := io.ReadFull(r, b); err != nil {
					return err
				}
				name = strings.ToUpper(string(b))
			} else if _, err := r.Discard(size); err != nil {
				return err
			}
			if _, err := r.Discard(2); err != nil {
				return err
			}
		}
		if name != "" {
			count(name)
		}
	}
}

func readCRLF(r *bufio.Reader) (string, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	return strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r"), nil
}

// redisWrites are the commands that may change data (or, for PUBLISH,
// send it on). Scripts count as writes, whatever they do.
var redisWrites = map[string]bool{
	"SET": true, "SETEX": true, "PSETEX": true, "SETNX": true, "GETSET": true, "GETDEL": true, "GETEX": true,
	"MSET": true, "DEL": true, "UNLINK": true, "EXPIRE": true, "PEXPIRE": true, "EXPIREAT": true,
	"PEXPIREAT": true, "PERSIST": true, "INCR": true, "INCRBY": true, "DECR": true, "DECRBY": true,
	"HSET": true, "HMSET": true, "HSETNX": true, "HDEL": true, "HINCRBY": true,
	"LPUSH": true, "RPUSH": true, "LPOP": true, "RPOP": true, "SADD": true, "SREM": true,
	"ZADD": true, "ZREM": true, "XADD": true, "XACK": true, "XDEL": true, "XTRIM": true, "XCLAIM": true,
	"EVAL": true, "EVALSHA": true, "FCALL": true, "PUBLISH": true, "SPUBLISH": true,
}

func isRedisWrite(name string) bool { return redisWrites[name] }
