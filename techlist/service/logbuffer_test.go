package service

import (
	"github.com/techlist/techlist/testenv"
	"strings"
	"testing"
	"time"
)

func TestLogBufferFlushesByTimeAndAtClose(t *testing.T) {
	var out testenv.Buffer
	b := newLogBuffer(&out, 20*time.Millisecond)
	b.Write([]byte("one\n"))
	deadline := time.Now().Add(5 * time.Second)
	for out.String() != "one\n" {
		if time.Now().After(deadline) {
			t.Fatalf("after the interval: got %q, want the line written", out.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	b.Write([]byte("two\n"))
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); got != "one\ntwo\n" {
		t.Errorf("after Close: got %q", got)
	}
	big := strings.Repeat("x", 70<<10)
	var out2 testenv.Buffer
	b2 := newLogBuffer(&out2, time.Hour)
	defer b2.Close()
	b2.Write([]byte(big))
	if len(out2.String()) < 64<<10 {
		t.Errorf("a write larger than the buffer waited for the interval")
	}
}
