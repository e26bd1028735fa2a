package main

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// underWritesRate is the POSTs a second sent while the cached reads are
// measured under writes.
const underWritesRate = 1000

// postWorkers bounds the POSTs in flight while reads are measured under
// writes.
const postWorkers = 100

// rwSide is one measurement of cached reads, with or without writes.
type rwSide struct {
	reads         throughput
	posts, failed int // POSTs sent during the measurement, and those not answered 202
	queries       int // MySQL list queries the reading api-server sent
	prefills      int // SELECTs the worker sent to refill first pages with its invalidations
	misses        int // reads answered MISS (each waited for a query)
	invalidations int // generations the worker moved the list cache on by
}

// readUnderWrites is the reads-under-writes target: cached GET throughput
// while underWritesRate POSTs a second are accepted and stored (pubsub, the
// worker storing), against the same reads without writes, in interleaved
// pairs; and the MySQL list queries the reads cost per invalidation: the
// api-server's (api_cache_list_queries_total: a counting proxy in its MySQL
// path slowed each miss, and every reader waiting on it) and the worker's
// prefills of the first pages (worker_list_prefills_total).
func (b *bench) readUnderWrites(ctx context.Context) ([]Row, error) {
	var with, without []rwSide
	for i := range b.o.reps {
		for _, writes := range []bool{i%2 == 0, i%2 == 1} {
			s, err := b.rwMeasure(ctx, writes)
			if err != nil {
				return nil, err
			}
			b.logf("GET cached, %s writes, pair %d: %.0f/s; %d POSTs (%d failed), %d MySQL list queries by the api-server and %d by the worker's prefill, %d invalidations, %d of %d reads MISS",
				map[bool]string{true: "with", false: "without"}[writes], i+1, s.reads.Rate(), s.posts, s.failed, s.queries, s.prefills, s.invalidations, s.misses, s.reads.Requests)
			if writes {
				with = append(with, s)
			} else {
				without = append(without, s)
			}
		}
	}
	return rwRows(with, without), nil
}

// listQueries is the api-server's count of its list queries to MySQL, and
// listMisses of the list reads it answered MISS.
// prefillQueries is the worker's count of its SELECTs refilling the first
// pages (0, absent, on a worker without the prefill).
const (
	listQueries    = "api_cache_list_queries_total"
	listMisses     = `api_cache_reads_total{kind="list",result="MISS"}`
	prefillQueries = "worker_list_prefills_total"
)

// rwMeasure measures cached reads for the warm-up and then the
// measurement, with POSTs at underWritesRate throughout when writes is set;
// only the measurement is counted.
func (b *bench) rwMeasure(ctx context.Context, writes bool) (rwSide, error) {
	var s rwSide
	apiURL := b.api.URL
	get := request{method: http.MethodGet, url: apiURL + "/api/v1/techs", want: http.StatusOK}
	if _, _, _, err := timedGet(ctx, http.DefaultClient, get.url); err != nil { // fills the cache
		return s, err
	}
	stopWrites, posts := func() {}, func() (int, int) { return 0, 0 }
	if writes {
		stopWrites, posts = b.postAtRate(ctx, apiURL)
	}
	defer stopWrites()
	if b.o.warmup > 0 {
		if _, err := b.gen.Closed(ctx, get, b.o.conns, b.o.warmup); err != nil {
			return s, err
		}
	}
	gen0, err := b.listGeneration(ctx)
	if err != nil {
		return s, err
	}
	q0, err := b.api.metric(ctx, listQueries)
	if err != nil {
		return s, err
	}
	m0, err := b.api.metric(ctx, listMisses)
	if err != nil {
		return s, err
	}
	w0, err := b.worker.metric(ctx, prefillQueries)
	if err != nil {
		return s, err
	}
	p0, f0 := posts()
	s.reads, err = b.gen.Closed(ctx, get, b.o.conns, b.o.duration)
	if err != nil {
		return s, err
	}
	p1, f1 := posts()
	gen1, err := b.listGeneration(ctx)
	if err != nil {
		return s, err
	}
	s.posts, s.failed = p1-p0, f1-f0
	q1, err := b.api.metric(ctx, listQueries)
	if err != nil {
		return s, err
	}
	m1, err := b.api.metric(ctx, listMisses)
	if err != nil {
		return s, err
	}
	w1, err := b.worker.metric(ctx, prefillQueries)
	if err != nil {
		return s, err
	}
	s.queries, s.misses, s.prefills = int(q1-q0), int(m1-m0), int(w1-w0)
	s.invalidations = int(gen1 - gen0)
	return s, nil
}

// listGeneration reads the list cache's generation, which each
// invalidation moves on by one.
func (b *bench) listGeneration(ctx context.Context) (int64, error) {
	v, err := b.w.rdb.Get(ctx, b.w.names+":{list}:gen").Result()
	if err != nil {
		return 0, fmt.Errorf("read the list generation: %w", err)
	}
	return strconv.ParseInt(v, 10, 64)
}

// postAtRate sends POSTs to apiURL at underWritesRate until stop, which
// waits for the attack to end. posts reports how many were sent so far and
// how many of those were not answered 202.
func (b *bench) postAtRate(ctx context.Context, apiURL string) (stop func(), posts func() (sent, failed int)) {
	target := vegeta.Target{Method: http.MethodPost, URL: apiURL + "/api/v1/techs",
		Body: []byte(`{"text":"a write among reads"}`), Header: http.Header{"Content-Type": {"application/json"}}}
	// At most postWorkers POSTs in flight: an api-server that cannot keep
	// up then shows as a lower rate (in the row's note), not as thousands
	// of connections that starve everything else, reads included.
	client, closeIdle := attackClient()
	atk := vegeta.NewAttacker(vegeta.Client(client), vegeta.KeepAlive(true), vegeta.MaxBody(0), vegeta.Timeout(10*time.Second),
		vegeta.Workers(20), vegeta.MaxWorkers(postWorkers))
	var mu sync.Mutex
	var sent, failed int
	done := make(chan struct{})
	go func() {
		defer close(done)
		// Long enough for any measurement; stop ends it.
		for res := range atk.Attack(vegeta.NewStaticTargeter(target), vegeta.Rate{Freq: underWritesRate, Per: time.Second}, time.Hour, "") {
			mu.Lock()
			sent++
			if res.Code != http.StatusAccepted {
				failed++
			}
			mu.Unlock()
		}
	}()
	stopAtk := context.AfterFunc(ctx, func() { atk.Stop() })
	stop = func() {
		stopAtk()
		atk.Stop()
		<-done
		closeIdle()
	}
	posts = func() (int, int) {
		mu.Lock()
		defer mu.Unlock()
		return sent, failed
	}
	return stop, posts
}

// rwRows are the throughput row (with writes against without) and the
// queries-per-invalidation row.
func rwRows(with, without []rwSide) []Row {
	var ours, base, ratios []float64
	queries, prefills, invalidations, posts, failed := 0, 0, 0, 0, 0
	var seconds float64
	for i := range with {
		ours, base = append(ours, with[i].reads.Rate()), append(base, without[i].reads.Rate())
		ratios = append(ratios, with[i].reads.Rate()/without[i].reads.Rate())
		queries, invalidations = queries+with[i].queries, invalidations+with[i].invalidations
		prefills += with[i].prefills
		posts, failed, seconds = posts+with[i].posts, failed+with[i].failed, seconds+with[i].reads.Seconds
	}
	ratio, baseMed := median(ratios), median(base)
	tp := Row{Scenario: fmt.Sprintf("GET /api/v1/techs cached, under %d POST/s vs none", underWritesRate), Unit: "req/s",
		Ours: median(ours), Baseline: &baseMed, Ratio: &ratio, Target: atLeastRatio(0.6),
		Samples: &Samples{Ours: ours, Baseline: base, Ratios: ratios}}.judge().
		note("the same reads as the cached-read row, while POSTs go to the same api-server at %d/s (pubsub, the worker storing), against the same reads without writes, in interleaved pairs", underWritesRate).
		note("%d POSTs sent during the measured reads, %.0f/s; the worker invalidated the list cache %d times", posts, float64(posts)/max(seconds, 1e-9), invalidations)
	if failed > 0 {
		tp = tp.problem("%d POSTs not answered 202", failed)
	}
	per := float64(queries+prefills) / float64(max(invalidations, 1))
	q := ownRow("reads under writes: MySQL list queries per invalidation", "", per, atMost(2)).
		note("%d list queries the api-server sent MySQL (api_cache_list_queries_total) and %d the worker sent refilling the first pages (worker_list_prefills_total), over %d invalidations (the list generation's moves)", queries, prefills, invalidations)
	if invalidations == 0 {
		q = q.problem("no invalidation happened during the measurements")
	}
	return []Row{tp, q}
}
