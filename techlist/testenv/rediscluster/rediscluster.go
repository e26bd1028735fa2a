// Package rediscluster starts a throwaway Redis Cluster of three masters
// from the redis-server binary, on free loopback ports, and stops it. The
// tests use it through testenv.RedisCluster; the bench, which has no
// testing.TB, uses it directly.
package rediscluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// Masters is how many masters a cluster has, each owning a third of the
// slots (redis-cli --cluster create with no replicas).
const Masters = 3

// The binaries a cluster is started with, found on PATH.
const (
	serverBin = "redis-server"
	cliBin    = "redis-cli"
)

// Cluster is a running throwaway cluster. Stop ends it.
type Cluster struct {
	Addrs []string // 127.0.0.1:<port> of each master
	nodes []*node
}

type node struct {
	cmd  *exec.Cmd
	dir  string
	done chan struct{} // closed once the process has exited and been reaped
}

// Available returns an error naming the binary the cluster needs that is
// not on PATH, or nil.
func Available() error {
	for _, bin := range []string{serverBin, cliBin} {
		if _, err := exec.LookPath(bin); err != nil {
			return fmt.Errorf("%s: %w", bin, err)
		}
	}
	return nil
}

// Start starts the masters, each with its files (nodes.conf, redis.log)
// in a folder of dir, joins them into one cluster and returns once every
// master reports the cluster ok and writes through a cluster client succeed. On
// any failure every node it started is killed before it returns.
func Start(ctx context.Context, dir string) (*Cluster, error) {
	return start(ctx, dir, serverBin, cliBin)
}

// start starts the cluster, again on other ports when a node lost one of
// its ports to another process between freePorts and its bind (tests in
// parallel take ports all the time: CI saw a bus port taken).
func start(ctx context.Context, dir, server, cli string) (*Cluster, error) {
	for attempt := 1; ; attempt++ {
		c, err := startOnce(ctx, dir, server, cli)
		if err == nil || attempt == 3 || !strings.Contains(err.Error(), "Address already in use") {
			return c, err
		}
	}
}

func startOnce(ctx context.Context, dir, server, cli string) (*Cluster, error) {
	c := &Cluster{}
	ok := false
	defer func() {
		if !ok {
			c.Stop()
		}
	}()
	for range Masters {
		if err := c.startNode(dir, server); err != nil {
			return nil, err
		}
	}
	for _, n := range c.nodes {
		if err := n.waitPing(ctx, c.addrOf(n)); err != nil {
			return nil, err
		}
	}
	var out bytes.Buffer
	create := exec.CommandContext(ctx, cli, createArgs(c.Addrs)...)
	create.Stdout, create.Stderr = &out, &out
	if err := create.Run(); err != nil {
		return nil, fmt.Errorf("redis-cli --cluster create: %w\n%s", err, out.String())
	}
	if err := waitClusterOK(ctx, c.Addrs); err != nil {
		return nil, err
	}
	ok = true
	return c, nil
}

// startNode starts one master on two free ports of its own: the client
// port and the cluster bus port. The bus port is set rather than left at
// the client port + 10000, which does not exist for client ports above
// 55535, and the kernel hands those out.
func (c *Cluster) startNode(dir, server string) error {
	ports, err := freePorts(2)
	if err != nil {
		return err
	}
	nodeDir := filepath.Join(dir, "node-"+strconv.Itoa(ports[0]))
	if err := os.MkdirAll(nodeDir, 0o755); err != nil {
		return err
	}
	cmd := exec.Command(server, nodeArgs(ports[0], ports[1], nodeDir)...)
	setDeathSignal(cmd)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start a cluster node: %w", err)
	}
	n := &node{cmd: cmd, dir: nodeDir, done: make(chan struct{})}
	go func() {
		cmd.Wait()
		close(n.done)
	}()
	c.nodes = append(c.nodes, n)
	c.Addrs = append(c.Addrs, "127.0.0.1:"+strconv.Itoa(ports[0]))
	return nil
}

func (c *Cluster) addrOf(n *node) string {
	for i, m := range c.nodes {
		if m == n {
			return c.Addrs[i]
		}
	}
	return ""
}

// nodeArgs is the command line of one master: loopback only, cluster
// mode with its bus on busPort, nothing persisted, its files in dir.
func nodeArgs(port, busPort int, dir string) []string {
	return []string{
		"--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--cluster-enabled", "yes", "--cluster-port", strconv.Itoa(busPort),
		"--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "2000",
		"--save", "", "--appendonly", "no",
		"--dir", dir, "--logfile", filepath.Join(dir, "redis.log"),
	}
}

// createArgs is redis-cli's command line joining addrs into one cluster
// of masters only, without asking.
func createArgs(addrs []string) []string {
	args := append([]string{"--cluster", "create"}, addrs...)
	return append(args, "--cluster-replicas", "0", "--cluster-yes")
}

// Pids returns the process id of each master, in the order of Addrs.
func (c *Cluster) Pids() []int {
	pids := make([]int, len(c.nodes))
	for i, n := range c.nodes {
		pids[i] = n.cmd.Process.Pid
	}
	return pids
}

// Stop kills every master and waits until each is gone. A throwaway
// cluster keeps nothing worth a graceful shutdown. Stopping twice is fine.
func (c *Cluster) Stop() {
	for _, n := range c.nodes {
		n.cmd.Process.Kill()
	}
	for _, n := range c.nodes {
		<-n.done
	}
}

// freePorts returns k TCP ports on 127.0.0.1 that were free a moment ago,
// all different.
func freePorts(k int) ([]int, error) {
	var ports []int
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	for range k {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find a free port: %w", err)
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// waitPing waits, 10 seconds at most, until the node answers PING; a node
// that exits (its port taken, say) fails at once with its log's end.
func (n *node) waitPing(ctx context.Context, addr string) error {
	rdb := goredis.NewClient(&goredis.Options{Addr: addr})
	defer rdb.Close()
	deadline := time.Now().Add(10 * time.Second)
	for rdb.Ping(ctx).Err() != nil {
		select {
		case <-n.done:
			return fmt.Errorf("cluster node %s exited; its log ends:\n%s", addr, n.logTail())
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("cluster node %s did not answer within 10s", addr)
		}
	}
	return nil
}

func (n *node) logTail() string {
	b, _ := os.ReadFile(filepath.Join(n.dir, "redis.log"))
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return strings.Join(lines[max(0, len(lines)-5):], "\n")
}

// waitClusterOK waits, 30 seconds at most, until every node reports the
// cluster ok and a cluster client can write keys of many slots.
func waitClusterOK(ctx context.Context, addrs []string) error {
	deadline := time.Now().Add(30 * time.Second)
	wait := func(what string) error {
		if time.Now().After(deadline) {
			return fmt.Errorf("%s within 30s", what)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
			return nil
		}
	}
	for _, a := range addrs {
		rdb := goredis.NewClient(&goredis.Options{Addr: a})
		for {
			info, err := rdb.ClusterInfo(ctx).Result()
			if err == nil && strings.Contains(info, "cluster_state:ok") {
				break
			}
			if werr := wait("cluster not ok at " + a); werr != nil {
				rdb.Close()
				return errors.Join(werr, err)
			}
		}
		rdb.Close()
	}
	cc := goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: addrs})
	defer cc.Close()
	for i := range 30 { // keys over many slots, so over every master
		key := "rediscluster-probe-" + strconv.Itoa(i)
		for cc.Set(ctx, key, "1", time.Minute).Err() != nil {
			if err := wait("the cluster does not accept writes"); err != nil {
				return err
			}
		}
	}
	return nil
}
