package main

import (
	"net"
	"os"
	"testing"
)

func TestPidListeningFindsThisProcess(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if got := pidListening(portOf(ln.Addr().String())); got != os.Getpid() {
		t.Errorf("pidListening: got %d, want this process, %d", got, os.Getpid())
	}
}

// Busy work shows in cpuSeconds within a few seconds of CPU (its unit is
// 1/100 s).
func TestCPUSecondsGrows(t *testing.T) {
	before, err := cpuSeconds(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	x := 0
	for range 5000 {
		for i := range 1_000_000 {
			x += i
		}
		if after, err := cpuSeconds(os.Getpid()); err != nil || after > before {
			return
		}
	}
	t.Errorf("cpuSeconds stayed at %v through seconds of work (%d)", before, x)
}
