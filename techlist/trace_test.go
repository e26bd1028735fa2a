package techlist

import (
	"fmt"
	"strings"
	"testing"
)

// A tracestate over 512 characters is cut as the W3C spec says: members
// over 128 characters first, then members from the end.
func TestBoundTracestate(t *testing.T) {
	member := func(key string, size int) string { return key + "=" + strings.Repeat("v", size-len(key)-1) }
	var big []string // 32 members of 250 characters: legal, and about 8 KB
	for i := range 32 {
		big = append(big, member(fmt.Sprint("k", i), 250))
	}
	var mid []string // 8 members of 100 characters: 807 in all
	for i := range 8 {
		mid = append(mid, member(fmt.Sprint("m", i), 100))
	}
	for _, tc := range []struct{ name, in, want string }{
		{"short", "a=1,b=2", "a=1,b=2"},
		{"exactly 512", member("a", 512), member("a", 512)},
		{"32 long members", strings.Join(big, ","), ""},
		{"short members among long ones", "a=1," + strings.Join(big, ",") + ",b=2", "a=1,b=2"},
		{"cut from the end", strings.Join(mid, " , "), strings.Join(mid[:5], ",")},
	} {
		got := BoundTracestate(tc.in)
		if got != tc.want || len(got) > MaxTracestate {
			t.Errorf("%s: got %q (%d), want %q", tc.name, got, len(got), tc.want)
		}
	}
}
