package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Target is what a row must reach: its ratio to the baseline, or its own
// figure, compared with Value. A row for the record has none (Of "none").
type Target struct {
	Of    string  `json:"of"` // "ratio", "ours" or "none"
	Op    string  `json:"op"` // ">=", "<=" or "<"
	Value float64 `json:"value"`
}

func atLeastRatio(v float64) Target { return Target{Of: "ratio", Op: ">=", Value: v} }
func atMostRatio(v float64) Target  { return Target{Of: "ratio", Op: "<=", Value: v} }
func below(v float64) Target        { return Target{Of: "ours", Op: "<", Value: v} }
func atMost(v float64) Target       { return Target{Of: "ours", Op: "<=", Value: v} }
func atLeast(v float64) Target      { return Target{Of: "ours", Op: ">=", Value: v} }

// forTheRecord is the target of a row measured to be read, not judged:
// it fails only on a problem (errors, lost messages).
func forTheRecord() Target { return Target{Of: "none"} }

func (t Target) String(unit string) string {
	op := map[string]string{">=": "≥", "<=": "≤", "<": "<"}[t.Op]
	switch t.Of {
	case "none":
		return "none (for the record)"
	case "ratio":
		return fmt.Sprintf("ratio %s %s", op, trim(t.Value))
	}
	return strings.TrimSpace(fmt.Sprintf("%s %s %s", op, trim(t.Value), unit))
}

func (t Target) met(ours, ratio float64) bool {
	if t.Of == "none" {
		return true
	}
	v := ours
	if t.Of == "ratio" {
		v = ratio
	}
	if math.IsNaN(v) {
		return false
	}
	switch t.Op {
	case ">=":
		return v >= t.Value
	case "<=":
		return v <= t.Value
	case "<":
		return v < t.Value
	}
	return false
}

// Row is one line of the table. Its JSON form is written by MarshalJSON.
type Row struct {
	Scenario string
	Unit     string
	Ours     float64
	// Baseline and Ratio are nil where the target is on our figure alone.
	Baseline *float64
	Ratio    *float64
	Target   Target
	Pass     bool
	// Problems fail the row whatever its figure (errors, lost messages).
	Problems []string
	Notes    []string
	Samples  *Samples
}

// Samples are the measurements behind a row's medians, in the order taken.
type Samples struct {
	Ours     []float64
	Baseline []float64
	// Ratios are ours/baseline of each interleaved pair; the row's ratio is
	// their median.
	Ratios []float64
}

// pairRow makes a row from interleaved pairs: the medians of each side,
// and the median of the pairs' ratios.
func pairRow(scenario, unit string, ours, base []float64, t Target) Row {
	rs := ratios(ours, base)
	ratio, b := median(rs), median(base)
	r := Row{Scenario: scenario, Unit: unit, Ours: median(ours), Baseline: &b, Ratio: &ratio, Target: t,
		Samples: &Samples{Ours: ours, Baseline: base, Ratios: rs}}
	return r.judge()
}

// ownRow makes a row judged on our figure alone.
func ownRow(scenario, unit string, ours float64, t Target) Row {
	return Row{Scenario: scenario, Unit: unit, Ours: ours, Target: t}.judge()
}

// MarshalJSON writes the row with its target spelled out; a figure that
// is not a number (nothing was measured) is null.
func (r Row) MarshalJSON() ([]byte, error) {
	out := struct {
		Scenario   string       `json:"scenario"`
		Unit       string       `json:"unit"`
		Ours       *float64     `json:"ours"`
		Baseline   *float64     `json:"baseline,omitempty"`
		Ratio      *float64     `json:"ratio,omitempty"`
		Target     Target       `json:"target"`
		TargetText string       `json:"target_text"`
		Pass       bool         `json:"pass"`
		Problems   []string     `json:"problems,omitempty"`
		Notes      []string     `json:"notes,omitempty"`
		Samples    *jsonSamples `json:"samples,omitempty"`
	}{Scenario: r.Scenario, Unit: r.Unit, Ours: finite(r.Ours), Target: r.Target, TargetText: r.Target.String(r.Unit),
		Pass: r.Pass, Problems: r.Problems, Notes: r.Notes}
	if r.Baseline != nil {
		out.Baseline = finite(*r.Baseline)
	}
	if r.Ratio != nil {
		out.Ratio = finite(*r.Ratio)
	}
	if s := r.Samples; s != nil {
		out.Samples = &jsonSamples{Ours: finites(s.Ours), Baseline: finites(s.Baseline), Ratios: finites(s.Ratios)}
	}
	return marshal(out, "")
}

// marshal is json.Marshal (indented when indent is not empty) without
// HTML escaping, so that "<" and ">=" stay readable.
func marshal(v any, indent string) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", indent)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

type jsonSamples struct {
	Ours     []*float64 `json:"ours,omitempty"`
	Baseline []*float64 `json:"baseline,omitempty"`
	Ratios   []*float64 `json:"ratios,omitempty"`
}

func finite(v float64) *float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	return &v
}

func finites(xs []float64) []*float64 {
	out := make([]*float64, len(xs))
	for i, x := range xs {
		out[i] = finite(x)
	}
	return out
}

func (r Row) judge() Row {
	ratio := math.NaN()
	if r.Ratio != nil {
		ratio = *r.Ratio
	}
	r.Pass = r.Target.met(r.Ours, ratio) && len(r.Problems) == 0
	return r
}

func (r Row) problem(format string, args ...any) Row {
	r.Problems = append(r.Problems, fmt.Sprintf(format, args...))
	return r.judge()
}

func (r Row) note(format string, args ...any) Row {
	r.Notes = append(r.Notes, fmt.Sprintf(format, args...))
	return r
}

func (r Row) cells() []string {
	base, ratio := "—", "—"
	if r.Baseline != nil {
		base = format(*r.Baseline, r.Unit)
	}
	if r.Ratio != nil {
		ratio = fmt.Sprintf("%.2f", *r.Ratio)
	}
	result := "PASS"
	switch {
	case !r.Pass:
		result = "FAIL"
	case r.Target.Of == "none":
		result = "—"
	}
	return []string{r.Scenario, format(r.Ours, r.Unit), base, ratio, r.Target.String(r.Unit), result}
}

func format(v float64, unit string) string {
	if math.IsNaN(v) {
		return "n/a"
	}
	switch unit {
	case "req/s", "rows/s":
		return fmt.Sprintf("%.0f %s", v, unit)
	case "ms":
		return fmt.Sprintf("%.2f ms", v)
	case "MB":
		return fmt.Sprintf("%.1f MB", v)
	}
	return strings.TrimSpace(trim(v) + " " + unit)
}

func trim(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

// Machine is what the run ran on.
type Machine struct {
	CPUs          int     `json:"cpus"`
	CPUModel      string  `json:"cpu_model"`
	MemoryGiB     float64 `json:"memory_gib"`
	Kernel        string  `json:"kernel"`
	GoVersion     string  `json:"go_version"`
	MariaDB       string  `json:"mariadb"`
	Redis         string  `json:"redis"`
	LoadGenerator string  `json:"load_generator"`
	Commit        string  `json:"commit"`
	LoadBefore    string  `json:"load_average_before"`
	LoadAfter     string  `json:"load_average_after"`
}

func describeMachine(ctx context.Context, w *world, gen loadGen) Machine {
	m := Machine{CPUs: runtime.NumCPU(), GoVersion: runtime.Version(), LoadGenerator: gen.Name(), LoadBefore: loadAverage()}
	m.CPUModel = procField("/proc/cpuinfo", "model name")
	if kb, err := strconv.ParseFloat(strings.TrimSuffix(procField("/proc/meminfo", "MemTotal"), " kB"), 64); err == nil {
		m.MemoryGiB = math.Round(kb/1024/1024*10) / 10
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if err := w.db.GetContext(ctx, &m.MariaDB, "SELECT VERSION()"); err != nil {
		m.MariaDB = "unknown: " + err.Error()
	}
	if info, err := w.rdb.Info(ctx, "server").Result(); err == nil {
		m.Redis = infoField(info, "redis_version")
	}
	if out, err := exec.Command("git", "-C", w.root, "rev-parse", "--short", "HEAD").Output(); err == nil {
		m.Commit = strings.TrimSpace(string(out))
		if st, err := exec.Command("git", "-C", w.root, "status", "--porcelain").Output(); err == nil && len(st) > 0 {
			m.Commit += " (with uncommitted changes)"
		}
	}
	return m
}

// procField returns the value of the first "name: value" line of a /proc file.
func procField(path, name string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == name {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func infoField(info, name string) string {
	for line := range strings.Lines(info) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), name+":"); ok {
			return v
		}
	}
	return ""
}

func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

// Settings are the knobs of the run, for the report.
type Settings map[string]string

func settingsOf(o options, gen loadGen) Settings {
	return Settings{
		"reps (interleaved pairs)":  strconv.Itoa(o.reps),
		"throughput measurement":    fmt.Sprintf("%s after %s warm-up, %d connections, closed loop", o.duration, o.warmup, o.conns),
		"load generator":            gen.Name(),
		"rows before the reads":     strconv.Itoa(o.seedRows),
		"hit/miss rounds":           fmt.Sprintf("%d rounds of %d sequential hits and %d misses", o.missRounds, o.missPer, o.missPer),
		"misses counted":            strconv.Itoa(o.countMisses),
		"streams backlog":           strconv.Itoa(o.drainRows),
		"batched-insert baseline":   fmt.Sprintf("%d rows per INSERT and transaction", o.batchRows),
		"end to end":                fmt.Sprintf("%d POST/s for %s, %d run(s)", o.e2eRate, o.e2eDuration, o.e2eReps),
		"services' non-default env": strings.TrimSpace("TASK_COST=0 " + o.env.String()),
	}
}

// Report is a whole run.
type Report struct {
	Command  string    `json:"command"`
	Started  time.Time `json:"started"`
	Seconds  float64   `json:"seconds"`
	Machine  Machine   `json:"machine"`
	Settings Settings  `json:"settings"`
	Rows     []Row     `json:"results"`
}

// AllPass reports whether every row met its target.
func (r Report) AllPass() bool {
	for _, row := range r.Rows {
		if !row.Pass {
			return false
		}
	}
	return true
}

var header = []string{"scenario", "ours", "baseline", "ratio", "target", "result"}

// Table is the report's table as aligned plain text, with the problems
// that failed rows below it.
func (r Report) Table() string {
	lines := [][]string{header}
	for _, row := range r.Rows {
		lines = append(lines, row.cells())
	}
	widths := make([]int, len(header))
	for _, l := range lines {
		for i, c := range l {
			widths[i] = max(widths[i], len([]rune(c)))
		}
	}
	var b strings.Builder
	for n, l := range lines {
		for i, c := range l {
			pad := widths[i] - len([]rune(c))
			if i > 0 {
				b.WriteString("  ")
			}
			if i == 1 || i == 2 || i == 3 { // numbers align right
				b.WriteString(strings.Repeat(" ", pad) + c)
			} else if i < len(l)-1 {
				b.WriteString(c + strings.Repeat(" ", pad))
			} else {
				b.WriteString(c)
			}
		}
		b.WriteString("\n")
		if n == 0 {
			total := len(widths)*2 - 2
			for _, w := range widths {
				total += w
			}
			b.WriteString(strings.Repeat("-", total) + "\n")
		}
	}
	for _, row := range r.Rows {
		for _, p := range row.Problems {
			fmt.Fprintf(&b, "! %s: %s\n", row.Scenario, p)
		}
	}
	return b.String()
}

// Markdown is the report as a Markdown page.
func (r Report) Markdown() string {
	var b strings.Builder
	m := r.Machine
	fmt.Fprintf(&b, "# Benchmark results\n\n")
	fmt.Fprintf(&b, "`%s`, started %s, took %.0f s. Every ratio is set against a baseline measured in the same run; "+
		"medians of interleaved, repeated pairs. See bench/README.md.\n\n", r.Command, r.Started.Format(time.RFC3339), r.Seconds)
	b.WriteString("| machine | |\n|---|---|\n")
	for _, kv := range [][2]string{
		{"cores (nproc)", strconv.Itoa(m.CPUs)}, {"CPU", m.CPUModel}, {"memory", fmt.Sprintf("%.1f GiB", m.MemoryGiB)},
		{"kernel", m.Kernel}, {"Go", m.GoVersion}, {"MariaDB", m.MariaDB}, {"Redis", m.Redis},
		{"load generator", m.LoadGenerator}, {"commit", m.Commit},
		{"load average before / after", m.LoadBefore + " / " + m.LoadAfter},
	} {
		fmt.Fprintf(&b, "| %s | %s |\n", kv[0], mdEscape(kv[1]))
	}
	b.WriteString("\n## Results\n\n")
	b.WriteString("| " + strings.Join(header, " | ") + " |\n|---|--:|--:|--:|---|---|\n")
	for _, row := range r.Rows {
		c := row.cells()
		if !row.Pass {
			c[5] = "**FAIL**"
		}
		for i := range c {
			c[i] = mdEscape(c[i])
		}
		b.WriteString("| " + strings.Join(c, " | ") + " |\n")
	}
	b.WriteString("\n## Details\n\n")
	for _, row := range r.Rows {
		if len(row.Problems)+len(row.Notes) == 0 && row.Samples == nil {
			continue
		}
		fmt.Fprintf(&b, "- **%s**", mdEscape(row.Scenario))
		for _, p := range row.Problems {
			fmt.Fprintf(&b, "\n  - problem: %s", mdEscape(p))
		}
		for _, n := range row.Notes {
			fmt.Fprintf(&b, "\n  - %s", mdEscape(n))
		}
		if s := row.Samples; s != nil {
			fmt.Fprintf(&b, "\n  - samples: ours %s; baseline %s; ratios %s", list(s.Ours), list(s.Baseline), list(s.Ratios))
		}
		b.WriteString("\n")
	}
	b.WriteString("\n## Settings\n\n| setting | value |\n|---|---|\n")
	for _, k := range sortedKeys(r.Settings) {
		fmt.Fprintf(&b, "| %s | %s |\n", k, mdEscape(r.Settings[k]))
	}
	return b.String()
}

func list(xs []float64) string {
	if len(xs) == 0 {
		return "—"
	}
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = strconv.FormatFloat(x, 'g', 4, 64)
	}
	return strings.Join(parts, ", ")
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func mdEscape(s string) string { return strings.ReplaceAll(s, "|", `\|`) }

// Write writes latest.json and latest.md into dir.
func (r Report) Write(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	b, err := marshal(r, "  ")
	if err != nil {
		return fmt.Errorf("encode the report: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "latest.json"), append(b, '\n'), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "latest.md"), []byte(r.Markdown()), 0o644)
}
