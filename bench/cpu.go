package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Where the machine goes during a write load: the CPU seconds (user plus
// system, from /proc/<pid>/stat) each process spent, per 1,000 POSTs.

// clockTicks is the kernel's USER_HZ, the unit of /proc/<pid>/stat's
// times; 100 on every Linux the harness runs on.
const clockTicks = 100

// cpuSeconds returns the user plus system CPU time pid has used.
func cpuSeconds(pid int) (float64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// The command name may hold spaces; the fields start after its ')'.
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(fields) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	utime, err1 := strconv.ParseFloat(fields[11], 64) // field 14
	stime, err2 := strconv.ParseFloat(fields[12], 64) // field 15
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: bad times %q %q", pid, fields[11], fields[12])
	}
	return (utime + stime) / clockTicks, nil
}

// pidListening returns the process listening on TCP port on this machine
// (Redis and MariaDB are found so, not by name: other Redis servers, such
// as test clusters, may run beside them), or 0 when none is found.
func pidListening(port int) int {
	inodes := map[string]bool{}
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(table)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			f := strings.Fields(line)
			// local_address is hex ip:port; state 0A is LISTEN.
			if len(f) > 9 && f[3] == "0A" && strings.HasSuffix(f[1], fmt.Sprintf(":%04X", port)) {
				inodes["socket:["+f[9]+"]"] = true
			}
		}
	}
	if len(inodes) == 0 {
		return 0
	}
	fds, _ := filepath.Glob("/proc/[0-9]*/fd/*")
	for _, fd := range fds {
		if link, err := os.Readlink(fd); err == nil && inodes[link] {
			pid, _ := strconv.Atoi(strings.Split(fd, "/")[2])
			return pid
		}
	}
	return 0
}

// portOf returns the port of host:port, or 0.
func portOf(addr string) int {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(p)
	return n
}

// cpuProc is one process whose CPU a write run accounts for.
type cpuProc struct {
	name string
	pid  int
	// late: sampled after the run has settled (the worker's stores), not
	// when the load stops.
	late bool
}

// cpuMeter reads the CPU of procs around a measurement: before, when
// the load stops (the processes that are not late), and once the run has
// settled (the late ones).
type cpuMeter struct {
	procs         []cpuProc
	before, after []float64
}

func startCPU(procs []cpuProc) *cpuMeter {
	m := &cpuMeter{procs: procs, before: make([]float64, len(procs)), after: make([]float64, len(procs))}
	for i, p := range procs {
		m.before[i], _ = cpuSeconds(p.pid)
	}
	return m
}

// read samples the processes whose late is as given.
func (m *cpuMeter) read(late bool) {
	for i, p := range m.procs {
		if p.late == late {
			m.after[i], _ = cpuSeconds(p.pid)
		}
	}
}

// spent returns the CPU seconds each process spent, in the order of procs.
func (m *cpuMeter) spent() []float64 {
	out := make([]float64, len(m.procs))
	for i := range m.procs {
		out[i] = m.after[i] - m.before[i]
	}
	return out
}

// cpuPer1000 runs one closed-loop measurement of req, outside the pairs,
// and returns the CPU seconds each of procs spent per 1,000 requests
// answered as wanted, and the load generator's own, in one note. settle,
// when not nil, is called after the load (it waits for the worker to store
// what was accepted) before the late processes are sampled.
func (b *bench) cpuPer1000(ctx context.Context, req request, procs []cpuProc, settle func(ok int) error) (string, error) {
	m := startCPU(procs)
	t, err := b.gen.Closed(ctx, req, b.o.conns, b.o.duration)
	if err != nil {
		return "", err
	}
	m.read(false)
	if settle != nil {
		if err := settle(t.OK); err != nil {
			return "", err
		}
	}
	m.read(true)
	if t.OK == 0 {
		return "CPU per 1,000 POSTs: not measured (no request answered)", nil
	}
	return fmt.Sprintf("CPU seconds per 1,000 POSTs, from one extra %s run of %d POSTs at %.0f/s: %s",
		b.o.duration, t.OK, t.Rate(), b.describeCPU(procs, m.spent(), t.CPU, t.OK)), nil
}

// describeCPU lists the CPU seconds per 1,000 POSTs of each process, and
// the load generator's, from what each spent over posts POSTs.
func (b *bench) describeCPU(procs []cpuProc, spent []float64, genCPU float64, posts int) string {
	per := 1000 / float64(posts)
	parts := make([]string, 0, len(procs)+1)
	for i, p := range procs {
		if p.pid == 0 {
			parts = append(parts, p.name+" n/a (not found)")
			continue
		}
		parts = append(parts, fmt.Sprintf("%s %.3f", p.name, spent[i]*per))
	}
	parts = append(parts, fmt.Sprintf("load generator (%s) %.3f", b.gen.Name(), genCPU*per))
	return strings.Join(parts, ", ")
}
