package retry_test

import (
	"context"
	"testing"
	"time"

	"github.com/techlist/techlist/retry"
)

func TestBackoffDoublesUpToMax(t *testing.T) {
	b := retry.Backoff{Min: 100 * time.Millisecond, Max: time.Second}
	want := []time.Duration{100, 200, 400, 800, 1000, 1000}
	for i, w := range want {
		if got := b.Next(); got != w*time.Millisecond {
			t.Errorf("wait %d: got %v, want %v", i, got, w*time.Millisecond)
		}
	}
	b.Reset()
	if got := b.Next(); got != 100*time.Millisecond {
		t.Errorf("after Reset: got %v, want 100ms", got)
	}
}

func TestBackoffJitterStaysInTheUpperHalf(t *testing.T) {
	b := retry.Backoff{Min: 50 * time.Millisecond, Max: 400 * time.Millisecond, Jitter: true}
	caps := []time.Duration{50, 100, 200, 400, 400, 400}
	varied := false
	for round := range 20 {
		b.Reset()
		for i, c := range caps {
			c *= time.Millisecond
			got := b.Next()
			if got < c/2 || got > c {
				t.Fatalf("round %d, wait %d: got %v, want within [%v, %v]", round, i, got, c/2, c)
			}
			if got != c {
				varied = true
			}
		}
	}
	if !varied {
		t.Error("every jittered wait was the full value; want random ones")
	}
}

func TestSleep(t *testing.T) {
	if !retry.Sleep(context.Background(), time.Millisecond) {
		t.Error("Sleep with a live context: got false, want true")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	start := time.Now()
	if retry.Sleep(ctx, time.Hour) {
		t.Error("Sleep with an ended context: got true, want false")
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("Sleep with an ended context took %v, want at once", took)
	}
}
