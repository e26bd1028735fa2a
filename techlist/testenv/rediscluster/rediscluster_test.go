package rediscluster_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/techlist/techlist/testenv"
	"github.com/techlist/techlist/testenv/rediscluster"
)

func TestStartMakesThreeMastersAndStopEndsThem(t *testing.T) {
	testenv.NeedRedisBinaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := rediscluster.Start(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	if len(c.Addrs) != rediscluster.Masters || len(c.Pids()) != rediscluster.Masters {
		t.Fatalf("got %d addresses and %d pids, want %d of each", len(c.Addrs), len(c.Pids()), rediscluster.Masters)
	}
	for _, a := range c.Addrs {
		rdb := goredis.NewClient(&goredis.Options{Addr: a})
		info, err := rdb.ClusterInfo(ctx).Result()
		rdb.Close()
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"cluster_state:ok", "cluster_size:3", "cluster_known_nodes:3", "cluster_slots_assigned:16384"} {
			if !strings.Contains(info, want+"\r\n") {
				t.Errorf("CLUSTER INFO at %s: no %q in\n%s", a, want, info)
			}
		}
	}
	pids := c.Pids()
	c.Stop()
	c.Stop() // twice is fine
	for i, pid := range pids {
		if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); err == nil {
			t.Errorf("node %s (pid %d) still there after Stop", c.Addrs[i], pid)
		}
		if conn, err := net.Dial("tcp", c.Addrs[i]); err == nil {
			conn.Close()
			t.Errorf("%s still accepts connections after Stop", c.Addrs[i])
		}
	}
}

// A failure after the nodes started (here redis-cli is "false") leaves
// none of them running.
func TestStartKillsItsNodesWhenItFails(t *testing.T) {
	testenv.NeedRedisBinaries(t)
	falseBin, err := exec.LookPath("false")
	if err != nil {
		t.Skip("no false on PATH")
	}
	dir := t.TempDir()
	c, err := rediscluster.StartWith(context.Background(), dir, "redis-server", falseBin)
	if err == nil {
		c.Stop()
		t.Fatal("Start with a failing redis-cli: got no error")
	}
	logs, _ := filepath.Glob(filepath.Join(dir, "node-*", "redis.log"))
	if len(logs) != rediscluster.Masters {
		t.Fatalf("got %d node logs in %s, want %d: the nodes did not start, so this test shows nothing", len(logs), dir, rediscluster.Masters)
	}
	if left := processesIn(t, dir); len(left) > 0 {
		t.Errorf("processes still running in %s after a failed Start: %v", dir, left)
	}
}

// processesIn returns the pids of the processes whose working folder is
// under dir (each node works in a folder of its own there).
func processesIn(t *testing.T, dir string) []int {
	t.Helper()
	links, _ := filepath.Glob("/proc/[0-9]*/cwd")
	var pids []int
	for _, l := range links {
		if cwd, err := os.Readlink(l); err == nil && strings.HasPrefix(cwd, dir+string(filepath.Separator)) {
			pid, _ := strconv.Atoi(strings.Split(l, "/")[2])
			pids = append(pids, pid)
		}
	}
	return pids
}

// Redis puts the cluster bus at the client port + 10000 unless told: a
// client port above 55535, which the kernel hands out, would leave it
// none. A node started with NodeArgs on such a port answers.
func TestNodeOnAHighPortStarts(t *testing.T) {
	testenv.NeedRedisBinaries(t)
	port, bus := highFreePort(t), lowFreePort(t)
	dir := t.TempDir()
	cmd := exec.Command("redis-server", rediscluster.NodeArgs(port, bus, dir)...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
	}()
	rdb := goredis.NewClient(&goredis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", port)})
	defer rdb.Close()
	testenv.Eventually(t, "a cluster node on port "+strconv.Itoa(port)+" answers PING", func() bool {
		return rdb.Ping(context.Background()).Err() == nil
	})
}

func highFreePort(t *testing.T) int {
	t.Helper()
	for p := 55536; p < 65536; p++ {
		if ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p)); err == nil {
			ln.Close()
			return p
		}
	}
	t.Skip("no free port above 55535")
	return 0
}

func lowFreePort(t *testing.T) int {
	t.Helper()
	for p := 20000; p < 30000; p++ {
		if ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p)); err == nil {
			ln.Close()
			return p
		}
	}
	t.Skip("no free port in 20000-29999")
	return 0
}

// A node that lost a port to another process between the choice of its
// ports and its bind (here the first node started, by a server that says
// so and exits) is started again on other ports, with the cluster.
func TestStartAgainWhenAPortWasTaken(t *testing.T) {
	testenv.NeedRedisBinaries(t)
	real, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("no redis-server on PATH")
	}
	dir := t.TempDir()
	once := filepath.Join(dir, "failed-once")
	server := filepath.Join(dir, "server.sh")
	script := `#!/bin/sh
if [ ! -e ` + once + ` ]; then
	touch ` + once + `
	for a; do [ "$prev" = --logfile ] && echo "# Could not create server TCP listening socket: bind: Address already in use" > "$a"; prev=$a; done
	exit 1
fi
exec ` + real + ` "$@"
`
	if err := os.WriteFile(server, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	c, err := rediscluster.StartWith(context.Background(), filepath.Join(dir, "cluster"), server, "redis-cli")
	if err != nil {
		t.Fatalf("Start after a node lost its port: %v", err)
	}
	c.Stop()
	if _, err := os.Stat(once); err != nil {
		t.Fatalf("the server never failed, so this test shows nothing: %v", err)
	}
}
