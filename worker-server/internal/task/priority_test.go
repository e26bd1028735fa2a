package task

import (
	"context"
	"hash/fnv"
	"strings"
	"testing"
	"time"

	"github.com/techlist/techlist"
)

func TestPriority(t *testing.T) {
	tests := []struct {
		text string
		want techlist.Priority
	}{
		{"Patch the OpenSSL security hole", techlist.PriorityHigh},
		{"Production OUTAGE in Redis", techlist.PriorityHigh},
		{"Fix a typo in the README", techlist.PriorityLow},
		{"someday: try Zig", techlist.PriorityLow},
		{"critical typo", techlist.PriorityHigh}, // high words win
	}
	for _, tt := range tests {
		if got := Priority(tt.text); got != tt.want {
			t.Errorf("Priority(%q): got %s, want %s", tt.text, got, tt.want)
		}
	}
}

func TestPriorityIsDeterministicAndSpread(t *testing.T) {
	if a, b := Priority("Kubernetes"), Priority("  kubernetes "); a != b {
		t.Errorf("case and spacing changed the result: %s vs %s", a, b)
	}
	counts := map[techlist.Priority]int{}
	for _, s := range []string{"Go", "Rust", "Redis", "MySQL", "Kafka", "NATS", "gRPC", "Vue", "React", "Svelte",
		"Postgres", "SQLite", "Docker", "Nomad", "Terraform", "Ansible", "Prometheus", "Grafana", "Elixir", "Zig"} {
		p := Priority(s)
		if !p.Valid() {
			t.Fatalf("Priority(%q) = %q, not a valid priority", s, p)
		}
		counts[p]++
	}
	for _, p := range []techlist.Priority{techlist.PriorityLow, techlist.PriorityMedium, techlist.PriorityHigh} {
		if counts[p] == 0 {
			t.Errorf("no text of 20 got %s: %v", p, counts)
		}
	}
}

func TestAnalyseHonoursCostAndContext(t *testing.T) {
	a := Analyser{Cost: time.Hour}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := a.Analyse(ctx, "Go"); err == nil {
		t.Error("Analyse with a cancelled context and an hour's cost: got nil error")
	}
	got, err := Analyser{}.Analyse(context.Background(), "Go")
	if err != nil || got != Priority("Go") {
		t.Errorf("Analyse without cost: got %s, %v; want %s", got, err, Priority("Go"))
	}
}

// TestNormalisedTextsTakeTheShortCut: Priority's short cut for texts
// already in normal form gives what the full normalisation and hash/fnv
// give, for texts in normal form and not.
func TestNormalisedTextsTakeTheShortCut(t *testing.T) {
	for _, text := range []string{"", "go", "backlog tech 42", "Go", " go", "go ", "go  redis", "go\tredis",
		"go\nredis", "café au lait", "naïve", "redis\u00a0streams", "x", "a b c d e f", "UPPER lower"} {
		norm := strings.Join(strings.Fields(strings.ToLower(text)), " ")
		// Non-ASCII texts take the long way, normal or not.
		ascii := strings.IndexFunc(text, func(r rune) bool { return r >= 0x80 }) < 0
		if normalised(text) && norm != text || ascii && !normalised(text) && norm == text {
			t.Errorf("normalised(%q) = %v, but its normal form is %q", text, normalised(text), norm)
		}
		h := fnv.New32a()
		h.Write([]byte(norm))
		if got, want := fnv32a(norm), h.Sum32(); got != want {
			t.Errorf("fnv32a(%q) = %d, hash/fnv gives %d", norm, got, want)
		}
		if got, want := Priority(text), Priority(norm); got != want {
			t.Errorf("Priority(%q) = %s, of its normal form %q %s", text, got, norm, want)
		}
	}
}
