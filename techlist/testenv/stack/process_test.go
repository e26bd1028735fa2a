package stack

import (
	"strings"
	"testing"
)

func TestWatcherFindsTheListeningPort(t *testing.T) {
	tests := []struct {
		name   string
		writes []string
		want   string
	}{
		{name: "text", writes: []string{"time=x level=INFO msg=listening addr=127.0.0.1:43121\n"}, want: "43121"},
		{name: "json", writes: []string{`{"level":"INFO","msg":"listening","addr":"[::]:5000"}` + "\n"}, want: "5000"},
		{name: "split over writes", writes: []string{"level=INFO msg=starting\nlevel=INFO msg=list", "ening addr=127.0.0.1:", "8080\n"}, want: "8080"},
		{name: "the bare baseline", writes: []string{"listening addr=127.0.0.1:39999\n"}, want: "39999"},
		{name: "not yet a whole line", writes: []string{"msg=listening addr=127.0.0.1:80"}, want: ""},
		{name: "the admin listener first, json", writes: []string{`{"msg":"listening","listener":"admin","addr":"127.0.0.1:6060"}` + "\n" + `{"msg":"listening","addr":"[::]:5000"}` + "\n"}, want: "5000"},
		{name: "the admin listener first, text", writes: []string{"msg=listening listener=admin addr=127.0.0.1:6060\nmsg=listening addr=[::]:5000\n"}, want: "5000"},
		{name: "no listening line", writes: []string{"msg=starting addr=127.0.0.1:80\n"}, want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := &watcher{found: make(chan struct{})}
			for _, s := range tt.writes {
				w.Write([]byte(s))
			}
			if w.port != tt.want {
				t.Errorf("got port %q, want %q", w.port, tt.want)
			}
		})
	}
}

func TestWatcherKeepsTheTail(t *testing.T) {
	w := &watcher{found: make(chan struct{})}
	for i := range 1000 {
		w.Write([]byte(strings.Repeat("x", 9) + string(rune('a'+i%26))))
	}
	got := w.tail()
	if len(got) != tailSize || !strings.HasSuffix(got, "xxxxxxxxxl") {
		t.Errorf("got a tail of %d bytes ending %q, want %d bytes ending with the last write", len(got), got[len(got)-10:], tailSize)
	}
}

func TestSetKey(t *testing.T) {
	got := setKey([]string{"PATH=/bin", "PORT=0", "A=1"}, "PORT", "5000")
	if strings.Join(got, " ") != "PATH=/bin PORT=5000 A=1" {
		t.Errorf("got %q", got)
	}
	if !hasKey(got, "A") || hasKey(got, "B") {
		t.Errorf("hasKey: wrong answer for %q", got)
	}
}
