package testenv

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// RedisCluster starts a throwaway Redis Cluster of three masters from the
// redis-server binary, on free loopback ports, and returns their addresses.
// The nodes are shut down when the test ends. Without redis-server and
// redis-cli on the PATH the test is skipped (or fails under
// REQUIRE_SERVICES or CI).
func RedisCluster(tb testing.TB) []string {
	tb.Helper()
	for _, bin := range []string{"redis-server", "redis-cli"} {
		if _, err := exec.LookPath(bin); err != nil {
			unavailable(tb, bin, err)
		}
	}
	dir := tb.TempDir()
	var addrs []string
	for i := range 3 {
		port := FreePort(tb)
		nodeDir := filepath.Join(dir, strconv.Itoa(port))
		if err := os.MkdirAll(nodeDir, 0o755); err != nil {
			tb.Fatal(err)
		}
		cmd := exec.Command("redis-server",
			"--port", strconv.Itoa(port), "--bind", "127.0.0.1",
			"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
			"--cluster-node-timeout", "2000", "--save", "", "--appendonly", "no",
			"--dir", nodeDir, "--logfile", filepath.Join(nodeDir, "redis.log"))
		if err := cmd.Start(); err != nil {
			tb.Fatalf("start cluster node %d: %v", i, err)
		}
		tb.Cleanup(func() {
			cmd.Process.Kill()
			cmd.Wait()
		})
		addrs = append(addrs, "127.0.0.1:"+strconv.Itoa(port))
	}
	for _, a := range addrs {
		waitPing(tb, a)
	}
	args := append([]string{"--cluster", "create"}, addrs...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	var out bytes.Buffer
	create := exec.Command("redis-cli", args...)
	create.Stdout, create.Stderr = &out, &out
	if err := create.Run(); err != nil {
		tb.Fatalf("redis-cli --cluster create: %v\n%s", err, out.String())
	}
	waitClusterOK(tb, addrs)
	return addrs
}

func waitPing(tb testing.TB, addr string) {
	tb.Helper()
	c := goredis.NewClient(&goredis.Options{Addr: addr})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for c.Ping(context.Background()).Err() != nil {
		if time.Now().After(deadline) {
			tb.Fatalf("cluster node %s did not start within 10s", addr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitClusterOK waits until every node reports the cluster ok and a
// cluster client can write to every slot's owner.
func waitClusterOK(tb testing.TB, addrs []string) {
	tb.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for _, a := range addrs {
		c := goredis.NewClient(&goredis.Options{Addr: a})
		for {
			info, err := c.ClusterInfo(context.Background()).Result()
			if err == nil && strings.Contains(info, "cluster_state:ok") {
				break
			}
			if time.Now().After(deadline) {
				c.Close()
				tb.Fatalf("cluster not ok at %s within 30s: %v %s", a, err, info)
			}
			time.Sleep(100 * time.Millisecond)
		}
		c.Close()
	}
	cc := goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: addrs})
	defer cc.Close()
	for i := range 30 {
		key := fmt.Sprintf("probe-%d", i)
		for cc.Set(context.Background(), key, "1", time.Minute).Err() != nil {
			if time.Now().After(deadline) {
				tb.Fatalf("cluster does not accept writes within 30s")
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}
