// Command bench measures the three services as the programs they are, on
// the real Redis and MariaDB, against baselines measured in the same run:
// a bare net/http server serving the same bytes, and a plain batched-insert
// loop on the same database. Other work on the machine makes absolute
// numbers noisy, so every figure is set against its baseline: the pairs are
// interleaved, repeated, and their medians reported.
//
// From the repository root:
//
//	go run ./bench            # what make bench runs after the micro-benchmarks
//	go run ./bench -quick     # a short smoke run (not for the committed results)
//
// It prints one table (scenario, our figure, the baseline, the ratio, the
// target, pass or fail) and writes the same to bench/results/latest.json and
// latest.md with the machine it ran on. It exits 1 when it could not measure;
// a missed target is reported, and fails the exit status only with -strict.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/techlist/techlist/testenv/stack"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// options are the run's knobs; the defaults are what make bench uses.
type options struct {
	reps        int           // measurements of each side of a pair
	duration    time.Duration // one throughput measurement
	warmup      time.Duration // load before each throughput measurement, not counted
	conns       int           // connections of a throughput measurement
	seedRows    int           // techs in the table before the reads
	missRounds  int           // rounds of hits and misses
	missPer     int           // reads of each kind per round
	countMisses int           // misses through the counting proxies
	drainRows   int           // backlog the worker drains in streams mode
	batchRows   int           // rows per transaction of the batched-insert baseline
	e2eRate     int           // POSTs per second of the end-to-end run
	e2eDuration time.Duration
	e2eReps     int
	loadgen     string // auto, vegeta or wrk
	out         string // folder of latest.json and latest.md; "" for none
	only        map[string]bool
	strict      bool
	args        []string // as given, for the report
	env         envFlag  // added to every service's environment
	apiEnv      envFlag  // added to the main api-server's, after env
	drainEnv    envFlag  // added to the streams drain workers', after env
}

// envFlag collects -env KEY=VALUE flags.
type envFlag map[string]string

func (e envFlag) String() string {
	parts := make([]string, 0, len(e))
	for k, v := range e {
		parts = append(parts, k+"="+v)
	}
	slices.Sort(parts)
	return strings.Join(parts, " ")
}

func (e envFlag) Set(kv string) error {
	k, v, ok := strings.Cut(kv, "=")
	if !ok || k == "" {
		return fmt.Errorf("want KEY=VALUE, got %q", kv)
	}
	e[k] = v
	return nil
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	flags := flag.NewFlagSet("bench", flag.ContinueOnError)
	flags.SetOutput(stderr)
	o := options{args: args, env: envFlag{}, apiEnv: envFlag{}, drainEnv: envFlag{}}
	o.define(flags)
	only := flags.String("only", "", "comma list of scenarios to run: "+strings.Join(scenarioNames, ","))
	quick := flags.Bool("quick", false, "a short smoke run: 1 rep, 1s measurements, 10,000-row drain")
	bare := flags.Bool("serve-bare", false, "internal: run the bare baseline server (see bare.go)")
	floor := flags.Bool("serve-floor", false, "internal: run the miss floor server (see floor.go)")
	bareCfg := bareFlags(flags)
	if err := flags.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if flags.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", flags.Arg(0))
	}
	if *bare {
		return serveBare(ctx, bareCfg, stdout)
	}
	if *floor {
		return serveFloor(ctx, *bareCfg.bodyFile, getenv, stdout)
	}
	if *quick {
		o.setQuick()
	}
	if err := o.setOnly(*only); err != nil {
		return err
	}
	if o.reps < 1 || o.conns < 1 || o.drainRows < 1 || o.batchRows < 1 || o.e2eRate < 1 || o.e2eReps < 1 {
		return errors.New("-reps, -conns, -drain-rows, -batch-rows, -e2e-rate and -e2e-reps must be at least 1")
	}
	root, err := stack.RepoRoot()
	if err != nil {
		return err
	}
	if o.out == "" {
		o.out = filepath.Join(root, "bench", "results")
	}
	return runBench(ctx, o, root, getenv, stdout, stderr)
}

// define sets the flags of o's knobs, with the defaults make bench uses.
func (o *options) define(flags *flag.FlagSet) {
	flags.Var(o.env, "env", "`KEY=VALUE` added to every service's environment (repeatable), e.g. -env LOG_LEVEL=warn")
	flags.Var(o.apiEnv, "api-env", "`KEY=VALUE` added to the main api-server's environment only (repeatable), e.g. -api-env ADMIN_ADDR=127.0.0.1:6060 to profile it")
	flags.Var(o.drainEnv, "drain-env", "`KEY=VALUE` added to the drain scenario's streams workers' environment only (repeatable), e.g. -drain-env ADMIN_ADDR=127.0.0.1:6071 to profile them")
	flags.IntVar(&o.reps, "reps", 5, "measurements of each side of every pair")
	flags.DurationVar(&o.duration, "duration", 5*time.Second, "length of one throughput measurement")
	flags.DurationVar(&o.warmup, "warmup", time.Second, "load before each throughput measurement, not counted")
	flags.IntVar(&o.conns, "conns", 50, "connections of a throughput measurement")
	flags.IntVar(&o.seedRows, "seed-rows", 1000, "techs in the table before the reads")
	flags.IntVar(&o.missRounds, "miss-rounds", 10, "rounds of sequential hits and misses")
	flags.IntVar(&o.missPer, "miss-per-round", 20, "hits and misses per round")
	flags.IntVar(&o.countMisses, "count-misses", 50, "misses whose MySQL and Redis commands are counted")
	flags.IntVar(&o.drainRows, "drain-rows", 100_000, "backlog the worker drains in streams mode")
	flags.IntVar(&o.batchRows, "batch-rows", 500, "rows per INSERT and transaction of the batched-insert baseline")
	flags.IntVar(&o.e2eRate, "e2e-rate", 5000, "POSTs per second of the end-to-end run")
	flags.DurationVar(&o.e2eDuration, "e2e-duration", 10*time.Second, "length of one end-to-end run")
	flags.IntVar(&o.e2eReps, "e2e-reps", 3, "end-to-end runs; the medians of their percentiles are reported")
	flags.StringVar(&o.loadgen, "loadgen", "auto", "load generator for throughput: vegeta (built in), wrk, or auto (wrk when on PATH, else vegeta)")
	flags.StringVar(&o.out, "out", "", "folder for latest.json and latest.md (default bench/results in the repository; - for none)")
	flags.BoolVar(&o.strict, "strict", false, "exit 1 when a target is missed")
}

// setQuick makes o a short smoke run (-quick).
func (o *options) setQuick() {
	o.reps, o.duration, o.warmup, o.drainRows, o.e2eDuration = 1, time.Second, 500*time.Millisecond, 10_000, 3*time.Second
	o.missRounds, o.countMisses, o.e2eReps = 4, 20, 1
}

// setOnly limits the run to the scenarios of the comma list only ("" for all).
func (o *options) setOnly(only string) error {
	if only == "" {
		return nil
	}
	o.only = map[string]bool{}
	for name := range strings.SplitSeq(only, ",") {
		if !knownScenario(name) {
			return fmt.Errorf("-only: unknown scenario %q (want some of %s)", name, strings.Join(scenarioNames, ","))
		}
		o.only[name] = true
	}
	return nil
}

// scenarioNames are the parts of a run, in the order they run.
var scenarioNames = []string{"read", "miss", "accept", "write", "tracing", "e2e", "drain", "partitions"}

func knownScenario(name string) bool {
	for _, n := range scenarioNames {
		if n == name {
			return true
		}
	}
	return false
}

func (o options) runs(name string) bool { return o.only == nil || o.only[name] }

// runBench starts everything, runs the scenarios, reports, and cleans up
// whatever happens.
func runBench(ctx context.Context, o options, root string, getenv func(string) string, stdout, stderr io.Writer) (err error) {
	started := time.Now()
	logf := func(format string, args ...any) {
		fmt.Fprintf(stderr, "bench %6.1fs  %s\n", time.Since(started).Seconds(), fmt.Sprintf(format, args...))
	}
	gen, err := newLoadGen(o.loadgen)
	if err != nil {
		return err
	}
	w, err := newWorld(ctx, root, getenv, o.env, logf)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := w.close(err != nil); cerr != nil {
			err = errors.Join(err, cerr)
		}
	}()
	b := &bench{o: o, w: w, gen: gen, logf: logf}
	machine := describeMachine(ctx, w, gen)
	logf("machine: %d cores, %s, %s, MariaDB %s, Redis %s; load generator %s", machine.CPUs, machine.CPUModel,
		machine.GoVersion, machine.MariaDB, machine.Redis, machine.LoadGenerator)

	if err := b.startStack(ctx); err != nil {
		return err
	}
	rows, err := b.scenarios(ctx)
	if err != nil {
		return err
	}
	rep := Report{
		Command:  strings.TrimSpace("go run ./bench " + strings.Join(o.args, " ")),
		Machine:  machine,
		Settings: settingsOf(o, gen),
		Started:  started.UTC().Truncate(time.Second),
		Seconds:  time.Since(started).Round(100 * time.Millisecond).Seconds(),
		Rows:     rows,
	}
	rep.Machine.LoadAfter = loadAverage()
	return b.publish(rep, stdout)
}

// scenarios runs the scenarios asked for, in order, then reads the memory
// of the services, and returns their rows.
func (b *bench) scenarios(ctx context.Context) ([]Row, error) {
	var rows []Row
	steps := []struct {
		name string
		fn   func(context.Context) ([]Row, error)
	}{
		{"read", b.readCached},
		{"read", b.readUnderWrites},
		{"miss", b.readMiss},
		{"accept", b.accept},
		{"write", b.write},
		{"tracing", b.tracingOffCost},
		{"e2e", b.endToEnd},
		{"drain", b.drain},
		{"partitions", b.partitions},
	}
	for _, s := range steps {
		if !b.o.runs(s.name) {
			continue
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		b.logf("scenario %s", s.name)
		got, err := s.fn(ctx)
		if err != nil {
			return nil, fmt.Errorf("scenario %s: %w", s.name, err)
		}
		rows = append(rows, got...)
	}
	memRows, err := b.memory()
	if err != nil {
		return nil, err
	}
	return append(rows, memRows...), nil
}

// publish prints the table, writes latest.json and latest.md unless -out
// is -, and fails under -strict when a target was missed.
func (b *bench) publish(rep Report, stdout io.Writer) error {
	fmt.Fprintln(stdout)
	fmt.Fprint(stdout, rep.Table())
	if b.o.out != "-" {
		if err := rep.Write(b.o.out); err != nil {
			return err
		}
		b.logf("wrote %s and %s", filepath.Join(b.o.out, "latest.json"), filepath.Join(b.o.out, "latest.md"))
	}
	if b.o.strict && !rep.AllPass() {
		return errors.New("some targets were missed (-strict)")
	}
	return nil
}
