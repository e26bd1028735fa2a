package cacheaside

import (
	"fmt"
	"testing"
	"time"
)

func TestAbsentExpiresAndIsBounded(t *testing.T) {
	now := time.Unix(0, 0)
	a := NewAbsent(5*time.Second, 100)
	a.now = func() time.Time { return now }
	a.Add("x")
	if !a.Has("x") {
		t.Fatal("Has right after Add: got false, want true")
	}
	now = now.Add(5 * time.Second)
	if a.Has("x") {
		t.Fatal("Has after the TTL: got true, want false")
	}
	for i := range 1000 {
		a.Add(fmt.Sprint(i))
	}
	if got := a.Len(); got > 100 {
		t.Errorf("entries after 1000 distinct ids: got %d, want at most 100", got)
	}
	if !a.Has("999") {
		t.Error("the newest id was not kept")
	}
	a.Forget("999")
	if a.Has("999") {
		t.Error("Has after Forget: got true, want false")
	}
}
