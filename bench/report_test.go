package main

import (
	"bufio"
	"encoding/json"
	"math"
	"strings"
	"testing"
)

func TestMedianAndPercentile(t *testing.T) {
	tests := []struct {
		xs       []float64
		med, p99 float64
	}{
		{xs: []float64{3, 1, 2}, med: 2, p99: 3},
		{xs: []float64{4, 1, 3, 2}, med: 2.5, p99: 4},
		{xs: []float64{7}, med: 7, p99: 7},
	}
	for _, tt := range tests {
		if got := median(tt.xs); got != tt.med {
			t.Errorf("median(%v): got %v, want %v", tt.xs, got, tt.med)
		}
		if got := percentile(tt.xs, 99); got != tt.p99 {
			t.Errorf("percentile(%v, 99): got %v, want %v", tt.xs, got, tt.p99)
		}
	}
	if !math.IsNaN(median(nil)) || !math.IsNaN(percentile(nil, 50)) {
		t.Error("median and percentile of nothing: want NaN")
	}
	xs := make([]float64, 100)
	for i := range xs {
		xs[i] = float64(100 - i)
	}
	if got := percentile(xs, 50); got != 50 {
		t.Errorf("p50 of 1..100: got %v, want 50", got)
	}
	if got := percentile(xs, 99); got != 99 {
		t.Errorf("p99 of 1..100: got %v, want 99", got)
	}
}

func TestPairRowTakesTheMedianOfThePairsRatios(t *testing.T) {
	r := pairRow("x", "req/s", []float64{80, 90, 40}, []float64{100, 100, 100}, atLeastRatio(0.8))
	if r.Ours != 80 || *r.Baseline != 100 || *r.Ratio != 0.8 || !r.Pass {
		t.Errorf("got ours %v, baseline %v, ratio %v, pass %v; want 80, 100, 0.8, true", r.Ours, *r.Baseline, *r.Ratio, r.Pass)
	}
	if r = r.problem("3 errors"); r.Pass {
		t.Error("a row with a problem passed")
	}
}

func TestTargets(t *testing.T) {
	tests := []struct {
		target      Target
		ours, ratio float64
		want        bool
	}{
		{atLeastRatio(0.5), 0, 0.5, true},
		{atLeastRatio(0.5), 0, 0.49, false},
		{atMostRatio(2), 0, 2, true},
		{atMostRatio(2), 0, 2.01, false},
		{below(10), 9.99, math.NaN(), true},
		{below(10), 10, math.NaN(), false},
		{atMost(1), 1, math.NaN(), true},
		{atLeast(1), 0.999, math.NaN(), false},
		{below(10), math.NaN(), math.NaN(), false},
	}
	for _, tt := range tests {
		if got := tt.target.met(tt.ours, tt.ratio); got != tt.want {
			t.Errorf("%+v met(%v, %v): got %v, want %v", tt.target, tt.ours, tt.ratio, got, tt.want)
		}
	}
}

func TestReportRendersAndEncodesNaN(t *testing.T) {
	rep := Report{Rows: []Row{
		pairRow("GET cached", "req/s", []float64{900}, []float64{1000}, atLeastRatio(0.8)),
		ownRow("nothing measured", "ms", math.NaN(), below(10)),
	}}
	table := rep.Table()
	for _, want := range []string{"GET cached", "900 req/s", "1000 req/s", "0.90", "ratio ≥ 0.8", "PASS", "n/a", "FAIL"} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q:\n%s", want, table)
		}
	}
	if !strings.Contains(rep.Markdown(), "| GET cached | 900 req/s | 1000 req/s | 0.90 | ratio ≥ 0.8 | PASS |") {
		t.Errorf("markdown row missing:\n%s", rep.Markdown())
	}
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatalf("encode: %v", err)
	}
	if !strings.Contains(string(b), `"ours":null`) || !strings.Contains(string(b), `"ratio":0.9`) {
		t.Errorf("JSON: got %s", b)
	}
	if rep.AllPass() {
		t.Error("AllPass with a failed row")
	}
}

// A row for the record shows its figures with no verdict, passes -strict,
// and still fails on a problem.
func TestRowForTheRecord(t *testing.T) {
	r := pairRow("3 partitions vs 1", "req/s", []float64{900, 1100}, []float64{1000, 1000}, forTheRecord())
	if !r.Pass {
		t.Error("a row for the record failed with no problem")
	}
	c := r.cells()
	if c[4] != "none (for the record)" || c[5] != "—" {
		t.Errorf("target and result cells: got %q, %q; want %q, %q", c[4], c[5], "none (for the record)", "—")
	}
	if !(Report{Rows: []Row{r}}).AllPass() {
		t.Error("AllPass: a row for the record counted as missed")
	}
	r = r.problem("12 messages lost")
	if r.Pass || r.cells()[5] != "FAIL" {
		t.Errorf("with a problem: got pass %v, result %q; want false, FAIL", r.Pass, r.cells()[5])
	}
}

func TestParseWrk(t *testing.T) {
	out := `Running 5s test @ http://127.0.0.1:8080/
  2 threads and 50 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.94ms    1.23ms  30.51ms   88.61%
    Req/Sec    13.19k     1.02k   15.60k    70.00%
  131287 requests in 5.00s, 1.15GB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 7
Requests/sec:  26254.77
Transfer/sec:    235.91MB
`
	got, err := parseWrk(out)
	if err != nil {
		t.Fatal(err)
	}
	if got.Requests != 131290 || got.OK != 131280 || got.Seconds != 5 || got.Failed["socket read"] != 2 || got.Failed["non-2xx or 3xx"] != 7 {
		t.Errorf("got %+v", got)
	}
	if _, err := parseWrk("unable to connect"); err == nil {
		t.Error("no summary: want an error")
	}
}

func TestFindSeries(t *testing.T) {
	text := `# HELP worker_messages_total Messages.
# TYPE worker_messages_total counter
worker_messages_total{result="received"} 1e+06
worker_messages_total{result="stored"} 99999
`
	got, err := findSeries(bufio.NewScanner(strings.NewReader(text)), `worker_messages_total{result="received"}`)
	if err != nil || got != 1e6 {
		t.Errorf("got %v, %v; want 1e6", got, err)
	}
	if got, err := findSeries(bufio.NewScanner(strings.NewReader(text)), `worker_messages_total{result="failed"}`); err != nil || got != 0 {
		t.Errorf("absent series: got %v, %v; want 0", got, err)
	}
}

func TestThousands(t *testing.T) {
	for n, want := range map[int]string{0: "0", 999: "999", 1000: "1,000", 100000: "100,000", 1234567: "1,234,567"} {
		if got := thousands(n); got != want {
			t.Errorf("thousands(%d): got %q, want %q", n, got, want)
		}
	}
}
