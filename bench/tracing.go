package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/techlist/techlist/testenv/stack"
)

// tracingOffCost says what tracing off costs: the api-server as shipped,
// with no OTEL_* endpoint, against the same code built with -tags
// notracing, which has none of tracing's per-request hooks (the
// traceparent lookup, the log handler, the publisher wrapper). Both serve
// the cached read and the POST, in interleaved pairs. Then, for the
// record and with fewer pairs, tracing on (every request sampled, spans
// sent to a sink in the harness) against off.
//
// The POSTs go to api-servers in streams mode with no worker, as in the
// accept scenario: a worker storing at the same time would set the pace
// (in pub/sub, a worker that falls behind makes POSTs 503), and what
// tracing adds is in the api-server.
func (b *bench) tracingOffCost(ctx context.Context) ([]Row, error) {
	bin := filepath.Join(b.w.tmp, "bin", "api-server-notracing")
	b.logf("building api-server with -tags notracing")
	if err := buildTagged(ctx, bin, "notracing", "./api-server"); err != nil {
		return nil, err
	}
	names := b.w.names + "-tracing"
	defer deleteKeys(context.WithoutCancel(ctx), b.w.rdb, names+"*")
	env := func(extra map[string]string) map[string]string {
		e := map[string]string{"QUEUE_MODE": "streams", "REDIS_CHANNEL": names, "STREAM_MAX_LEN": "10000000"}
		maps.Copy(e, extra)
		return b.w.serviceEnv(e)
	}
	untraced, err := b.w.start("api-server-notracing", bin, nil, env(nil))
	if err != nil {
		return nil, err
	}
	defer untraced.stop()
	if err := untraced.WaitReady(ctx, "/readyz", 60*time.Second); err != nil {
		return nil, err
	}
	off, err := b.w.service(ctx, "api-server-tracing-off", "api-server", env(nil))
	if err != nil {
		return nil, err
	}
	defer off.stop()
	b.between = func(ctx context.Context) error { return deleteKeys(ctx, b.w.rdb, names+"*") }
	defer func() { b.between = nil }()
	read, post, err := b.offAgainst(ctx, "tracing off vs compiled out", off.URL, untraced.URL, b.o.reps)
	if err != nil {
		return nil, err
	}
	readRow := b.tracingRow("GET /api/v1/techs cached, tracing off vs compiled out", read)
	postRow := b.tracingRow("POST /api/v1/techs (streams, no worker), tracing off vs compiled out", post)
	onRead, onPost, err := b.tracingOn(ctx, off, env)
	if err != nil {
		return nil, err
	}
	readRow = readRow.note("for the record, tracing on (every request sampled, spans exported over OTLP/HTTP to a sink in the harness) served the cached read at %.2f× tracing off", onRead)
	postRow = postRow.note("for the record, tracing on served the POST at %.2f× tracing off", onPost)
	return []Row{readRow, postRow}, nil
}

// offAgainst measures the cached first page and the POST on ours and
// base, in reps interleaved pairs each.
func (b *bench) offAgainst(ctx context.Context, name, ours, base string, reps int) (read, post pairResult, err error) {
	client := &http.Client{Timeout: 10 * time.Second}
	for _, u := range []string{ours, base} {
		for range 2 { // the first read fills the cache, the second is a hit
			if _, _, _, err := timedGet(ctx, client, u+"/api/v1/techs"); err != nil {
				return read, post, err
			}
		}
	}
	b2 := *b // the same run with its own number of pairs
	b2.o.reps = reps
	get := func(u string) request {
		return request{method: http.MethodGet, url: u + "/api/v1/techs", want: http.StatusOK}
	}
	if read, err = b2.pairs(ctx, name+", GET", get(ours), get(base)); err != nil {
		return read, post, err
	}
	post, err = b2.pairs(ctx, name+", POST", postTo(ours), postTo(base))
	return read, post, err
}

func (b *bench) tracingRow(scenario string, res pairResult) Row {
	row := pairRow(scenario, "req/s", res.ours, res.base, atLeastRatio(0.95)).
		note("ours: the api-server as built for use, no OTEL_* set; baseline: the same code built with -tags notracing; both side by side on the same Redis and MySQL, in streams mode with no worker (the POSTs' entries wait in a stream, deleted between measurements)").
		note("what tracing costs that this row does not show: linking OpenTelemetry roughly doubled the binary (about 20 to 39 MB) and its packages' start-up work adds to the process's memory, which the api-server's peak RSS row includes")
	all := append(append([]throughput{}, res.oursRuns...), res.baseRuns...)
	if failed, kinds := failureNotes(all); failed+res.warmFailures > 0 {
		row = row.problem("%d requests failed (%s)", failed+res.warmFailures, kinds)
	}
	return row
}

// tracingOn starts an api-server like off but exporting every span to a
// sink, and returns its rates on the cached read and the POST against off.
func (b *bench) tracingOn(ctx context.Context, off *process, env func(map[string]string) map[string]string) (read, post float64, err error) {
	sink, spans, err := startSpanSink()
	if err != nil {
		return 0, 0, err
	}
	defer sink.Close()
	on, err := b.w.service(ctx, "api-server-traced", "api-server", env(map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT": "http://" + sink.Addr().String(),
		"OTEL_TRACES_SAMPLER":         "always_on",
	}))
	if err != nil {
		return 0, 0, err
	}
	defer on.stop()
	r, p, err := b.offAgainst(ctx, "tracing on vs off", on.URL, off.URL, min(b.o.reps, 3))
	if err != nil {
		return 0, 0, err
	}
	if spans.Load() == 0 {
		return 0, 0, fmt.Errorf("the traced api-server exported no spans to %s", sink.Addr())
	}
	b.logf("tracing on: %d OTLP exports received", spans.Load())
	return median(ratios(r.ours, r.base)), median(ratios(p.ours, p.base)), nil
}

// startSpanSink serves OTLP/HTTP exports on a port of its own, reading
// and dropping them, and counts them.
func startSpanSink() (net.Listener, *atomic.Int64, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, err
	}
	var exports atomic.Int64
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		exports.Add(1)
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.WriteHeader(http.StatusOK)
	})}
	go srv.Serve(ln)
	return ln, &exports, nil
}

// buildTagged builds one program into the file out with the build tags.
func buildTagged(ctx context.Context, out, tags, program string) error {
	root, err := stack.RepoRoot()
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-tags", tags, "-o", out, program)
	cmd.Dir = root
	if msg, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build %s -tags %s: %w\n%s", program, tags, err, msg)
	}
	return nil
}
