package web

import (
	"testing"
	"time"

	"github.com/techlist/client-app/internal/apiclient"
)

func TestAfter(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{-time.Second, "at once"},
		{0, "0.0 s later"},
		{249 * time.Millisecond, "0.2 s later"},
		{1500 * time.Millisecond, "1.5 s later"},
		{12 * time.Second, "12 s later"},
		{3*time.Minute + 10*time.Second, "3 min later"},
		{5 * time.Hour, "5 h later"},
		{72 * time.Hour, "3 days later"},
	}
	for _, tt := range tests {
		if got := after(tt.d); got != tt.want {
			t.Errorf("after(%v): got %q, want %q", tt.d, got, tt.want)
		}
	}
}

func TestDuration(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{0, "0 ms"},
		{1234 * time.Microsecond, "1.2 ms"},
		{45 * time.Millisecond, "45 ms"},
		{2500 * time.Millisecond, "2.50 s"},
	}
	for _, tt := range tests {
		if got := duration(tt.d); got != tt.want {
			t.Errorf("duration(%v): got %q, want %q", tt.d, got, tt.want)
		}
	}
}

func TestIDTime(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 678e6, time.UTC)
	tests := []struct {
		id     string
		want   time.Time
		wantOK bool
	}{
		{"019b7c7f-3f96-7000-8000-000000000001", time.UnixMilli(0x019b7c7f3f96).UTC(), true},
		{"019b7c7f-3f96-4000-8000-000000000001", time.Time{}, false}, // a UUIDv4
		{"not an id", time.Time{}, false},
	}
	for _, tt := range tests {
		got, ok := idTime(tt.id)
		if ok != tt.wantOK || !got.Equal(tt.want) {
			t.Errorf("idTime(%q): got %v, %v; want %v, %v", tt.id, got, ok, tt.want, tt.wantOK)
		}
	}
	// The api-server's ids round-trip to the millisecond.
	if got, ok := idTime(formatV7(at)); !ok || !got.Equal(at.Truncate(time.Millisecond)) {
		t.Errorf("round trip: got %v, %v; want %v", got, ok, at)
	}
}

func formatV7(at time.Time) string {
	const hex = "0123456789abcdef"
	ms := at.UnixMilli()
	b := make([]byte, 12)
	for i := 11; i >= 0; i-- {
		b[i] = hex[ms&0xf]
		ms >>= 4
	}
	return string(b[:8]) + "-" + string(b[8:]) + "-7abc-8def-0123456789ab"
}

func TestGroupAndStatsView(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 1234567: "1,234,567", -1234: "-1,234"} {
		if got := group(n); got != want {
			t.Errorf("group(%d): got %q, want %q", n, got, want)
		}
	}
	one, ratio := int64(1), 1.0
	v := newStatsView(apiclient.Stats{QueueMode: "streams", Waiting: &one, Cache: apiclient.CacheStats{Hits: 1, HitRatio: &ratio}}, nil)
	want := statsView{Available: true, QueueMode: "streams", Waiting: "1", Total: "–", HitRatio: "100 %", Reads: "1 hit in 1 list read since the API server started"}
	if v != want {
		t.Errorf("stats view:\ngot  %+v\nwant %+v", v, want)
	}
}
