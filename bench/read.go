package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/techlist/techlist"
	"github.com/techlist/techlist/mysql"
	"github.com/techlist/techlist/redis"
)

// bench is one run: its options, its world, and the stack the scenarios
// share (an api-server and a worker-server in pubsub mode).
type bench struct {
	o      options
	w      *world
	gen    loadGen
	logf   func(string, ...any)
	api    *process
	worker *process
	// drainPeaks are the VmHWM of the streams-mode workers, in bytes.
	drainPeaks []int64
	// between, when set, runs after each measurement of pairs (the accept
	// scenario empties its stream there).
	between func(context.Context) error
	// around, when set, runs before each measurement of pairs, after its
	// warm-up, and the func it returns after the measurement, with it (the
	// partitions scenario reads the CPU there).
	around func(ctx context.Context, ours bool) (after func(throughput) error, err error)
}

// startStack fills the table with seedRows techs and starts the worker and
// the api-server with every setting at its default but TASK_COST=0.
func (b *bench) startStack(ctx context.Context) error {
	store := mysql.NewStore(b.w.db, b.w.mysql.Table)
	now := mysql.Now()
	for done := 0; done < b.o.seedRows; {
		n := min(500, b.o.seedRows-done)
		batch := make([]techlist.Tech, n)
		for i := range batch {
			batch[i] = techlist.Tech{ID: newID(), Text: fmt.Sprintf("seeded tech %d", done+i),
				Priority:    []techlist.Priority{techlist.PriorityLow, techlist.PriorityMedium, techlist.PriorityHigh}[i%3],
				SubmittedAt: now, CreatedAt: now}
		}
		if _, err := store.Insert(ctx, batch); err != nil {
			return fmt.Errorf("seed the table: %w", err)
		}
		done += n
	}
	var err error
	if b.worker, err = b.w.service(ctx, "worker-server", "worker-server", b.w.serviceEnv(nil)); err != nil {
		return err
	}
	if b.api, err = b.w.service(ctx, "api-server", "api-server", b.w.serviceEnv(b.o.apiEnv)); err != nil {
		return err
	}
	b.logf("stack up: api-server %s, worker-server %s (pubsub), %d techs in the table", b.api.URL, b.worker.URL, b.o.seedRows)
	return nil
}

func newID() string {
	id, err := uuid.NewV7()
	if err != nil {
		panic(err) // only when the system's random source fails
	}
	return id.String()
}

// pairResult holds the interleaved measurements of our server and its baseline.
type pairResult struct {
	ours, base         []float64 // answers per second
	oursRuns, baseRuns []throughput
	warmFailures       int // failed requests of our server during warm-ups
}

// pairs measures ours and base reps times each, in interleaved pairs
// whose order alternates (ours first, then base first), each measurement
// after a warm-up of its own.
func (b *bench) pairs(ctx context.Context, name string, ours, base request) (pairResult, error) {
	var res pairResult
	for i := range b.o.reps {
		order := []bool{true, false}
		if i%2 == 1 {
			order = []bool{false, true}
		}
		for _, isOurs := range order {
			req, who := base, "baseline"
			if isOurs {
				req, who = ours, "ours"
			}
			if b.o.warmup > 0 {
				warm, err := b.gen.Closed(ctx, req, b.o.conns, b.o.warmup)
				if err != nil {
					return res, err
				}
				if isOurs {
					res.warmFailures += warm.failures()
				}
			}
			after := func(throughput) error { return nil }
			if b.around != nil {
				var err error
				if after, err = b.around(ctx, isOurs); err != nil {
					return res, err
				}
			}
			t, err := b.gen.Closed(ctx, req, b.o.conns, b.o.duration)
			if err != nil {
				return res, err
			}
			if err := after(t); err != nil {
				return res, err
			}
			if b.between != nil {
				if err := b.between(ctx); err != nil {
					return res, err
				}
			}
			b.logf("%s, %s, pair %d: %.0f/s (%d requests, %d failed)", name, who, i+1, t.Rate(), t.Requests, t.failures())
			if isOurs {
				res.ours, res.oursRuns = append(res.ours, t.Rate()), append(res.oursRuns, t)
			} else {
				res.base, res.baseRuns = append(res.base, t.Rate()), append(res.baseRuns, t)
			}
		}
	}
	return res, nil
}

func failureNotes(runs []throughput) (int, string) {
	total := 0
	kinds := map[string]int{}
	for _, t := range runs {
		total += t.failures()
		for k, n := range t.Failed {
			kinds[k] += n
		}
	}
	var parts []string
	for k, n := range kinds {
		parts = append(parts, fmt.Sprintf("%s ×%d", k, n))
	}
	slices.Sort(parts)
	return total, strings.Join(parts, ", ")
}

// readCached is target 1: the cached first page against a bare server
// serving the same bytes.
func (b *bench) readCached(ctx context.Context) ([]Row, error) {
	client := &http.Client{Timeout: 10 * time.Second}
	url := b.api.URL + "/api/v1/techs"
	var body []byte
	var xcache string
	for range 2 { // the first read fills the cache
		var err error
		if _, xcache, body, err = timedGet(ctx, client, url); err != nil {
			return nil, err
		}
	}
	if xcache != "HIT" {
		return nil, fmt.Errorf("the second read of %s was X-Cache %q, want HIT", url, xcache)
	}
	bare, err := b.w.startBare(ctx, "bare-get", http.StatusOK, body, "")
	if err != nil {
		return nil, err
	}
	defer bare.stop()
	res, err := b.pairs(ctx, "GET cached",
		request{method: http.MethodGet, url: url, want: http.StatusOK},
		request{method: http.MethodGet, url: bare.URL + "/api/v1/techs", want: http.StatusOK})
	if err != nil {
		return nil, err
	}
	row := pairRow("GET /api/v1/techs, cached first page", "req/s", res.ours, res.base, atLeastRatio(0.9)).
		note("first page of 50 techs, %d bytes; the bare net/http server serves the same bytes", len(body))
	if failed, kinds := failureNotes(res.oursRuns); failed+res.warmFailures > 0 {
		row = row.problem("%d failed requests (%s)", failed+res.warmFailures, kinds)
	}
	xc := map[string]int{}
	for _, t := range res.oursRuns {
		for k, n := range t.XCache {
			xc[k] += n
		}
	}
	if len(xc) > 0 {
		row = row.note("X-Cache of the measured answers: %s", describeCounts(xc, 1))
	}
	return []Row{row}, nil
}

// timedGet reads url to the end and returns how long that took, the
// X-Cache header and the body. A status other than 200 is an error.
func timedGet(ctx context.Context, client *http.Client, url string) (time.Duration, string, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, "", nil, err
	}
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", nil, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	elapsed := time.Since(start)
	if err != nil {
		return 0, "", nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return 0, "", nil, fmt.Errorf("GET %s: %s: %s", url, resp.Status, body)
	}
	return elapsed, resp.Header.Get("X-Cache"), body, nil
}

// missMaker forces the next list read to miss every cache tier: it drops
// the Redis pages the way the worker does (the generation bumped, the hash
// deleted) and, for an api-server keeping pages in process, announces a
// tech.created event on the events channel, as the worker does after a
// commit; the event names a tech that was never stored.
type missMaker struct {
	w     *world
	cache *redis.Cache
	event []byte
}

func newMissMaker(w *world) (*missMaker, error) {
	now := time.Now().UTC()
	ev, err := json.Marshal(techlist.Event{Type: techlist.EventTechCreated, Tech: techlist.Tech{
		ID: newID(), Text: "cache buster", Priority: techlist.PriorityLow, CreatedAt: now, SubmittedAt: now}})
	if err != nil {
		return nil, err
	}
	return &missMaker{w: w, cache: redis.NewCache(w.rdb, w.names, time.Minute), event: ev}, nil
}

func (m *missMaker) invalidate(ctx context.Context) error {
	if err := m.cache.InvalidateLists(ctx); err != nil {
		return err
	}
	if err := m.w.rdb.Publish(ctx, redis.EventsChannel(m.w.names), m.event).Err(); err != nil {
		return fmt.Errorf("publish an event: %w", err)
	}
	// The event reaches the api-server asynchronously; a read that still
	// finds the page is retried (see miss).
	time.Sleep(2 * time.Millisecond)
	return nil
}

// miss reads url after invalidating, until the read is a MISS (at most 20
// tries), and returns its latency and how many reads were not misses.
func (m *missMaker) miss(ctx context.Context, client *http.Client, url string) (time.Duration, int, error) {
	for tries := 0; tries < 20; tries++ {
		if err := m.invalidate(ctx); err != nil {
			return 0, tries, err
		}
		d, xcache, _, err := timedGet(ctx, client, url)
		if err != nil {
			return 0, tries, err
		}
		if xcache == "MISS" {
			return d, tries, nil
		}
	}
	return 0, 20, fmt.Errorf("GET %s: no MISS after 20 invalidations", url)
}

// readMiss is target 2: sequential misses against the miss floor (see
// floor.go), in interleaved rounds; then the commands a miss costs, counted
// by proxies in front of MySQL and Redis for a second api-server.
func (b *bench) readMiss(ctx context.Context) ([]Row, error) {
	mm, err := newMissMaker(b.w)
	if err != nil {
		return nil, err
	}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
	defer client.CloseIdleConnections()
	url := b.api.URL + "/api/v1/techs"
	if _, _, err := mm.miss(ctx, client, url); err != nil {
		return nil, err
	}
	_, _, body, err := timedGet(ctx, client, url) // a HIT: a miss answers these bytes with "cached":false
	if err != nil {
		return nil, err
	}
	floor, err := b.w.startFloor(body)
	if err != nil {
		return nil, err
	}
	defer floor.stop()
	var ms missSamples
	for r := range b.o.missRounds {
		if err := b.missRound(ctx, client, mm, url, floor.URL+"/api/v1/techs", r, &ms); err != nil {
			return nil, err
		}
	}
	latency := b.missLatencyRow(ms)
	b.logf("miss %.2f ms, floor %.2f ms (medians)", latency.Ours, *latency.Baseline)

	counted, err := b.countMiss(ctx, mm)
	if err != nil {
		return nil, err
	}
	return append([]Row{latency}, counted...), nil
}

// missSamples are the sequential reads of readMiss.
type missSamples struct {
	floor, misses                     []time.Duration
	roundFloor, roundMiss, roundRatio []float64 // each round's medians, and their ratio
	retries                           int       // invalidated reads that were not misses
}

// missRound is round r of readMiss: missPer floor reads and missPer misses,
// the floor first in even rounds, the misses first in odd ones.
func (b *bench) missRound(ctx context.Context, client *http.Client, mm *missMaker, url, floorURL string, r int, ms *missSamples) error {
	var f, m []time.Duration
	doFloor := func() error {
		for range b.o.missPer {
			d, _, _, err := timedGet(ctx, client, floorURL)
			if err != nil {
				return err
			}
			f = append(f, d)
		}
		return nil
	}
	doMisses := func() error {
		for range b.o.missPer {
			d, tries, err := mm.miss(ctx, client, url)
			if err != nil {
				return err
			}
			ms.retries += tries
			m = append(m, d)
		}
		return nil
	}
	first, second := doFloor, doMisses
	if r%2 == 1 {
		first, second = doMisses, doFloor
	}
	if err := first(); err != nil {
		return err
	}
	if err := second(); err != nil {
		return err
	}
	ms.floor, ms.misses = append(ms.floor, f...), append(ms.misses, m...)
	floorMed, missMed := median(durationsMs(f)), median(durationsMs(m))
	ms.roundFloor, ms.roundMiss, ms.roundRatio = append(ms.roundFloor, floorMed), append(ms.roundMiss, missMed), append(ms.roundRatio, missMed/floorMed)
	return nil
}

// missLatencyRow is the row of the miss latency against its floor.
func (b *bench) missLatencyRow(ms missSamples) Row {
	floorMs, missMs := durationsMs(ms.floor), durationsMs(ms.misses)
	ratio, floorMed := median(ms.roundRatio), median(floorMs)
	latency := Row{Scenario: "GET /api/v1/techs, miss latency vs its floor (sequential)", Unit: "ms",
		Ours: median(missMs), Baseline: &floorMed, Ratio: &ratio, Target: atMostRatio(1.5),
		Samples: &Samples{Ours: ms.roundMiss, Baseline: ms.roundFloor, Ratios: ms.roundRatio}}.judge().
		note("the floor: a plain net/http handler in the harness doing the same SELECT (the first page, 51 rows) and one HSET of the page, one after the other, on the run's MySQL and Redis, answering the same bytes").
		note("%d misses and %d floor reads, one at a time over one connection, in %d interleaved rounds; figures are medians of all reads, the ratio the median of the rounds' ratios (samples are per-round medians)",
			len(ms.misses), len(ms.floor), b.o.missRounds).
		note("p90: miss %.2f ms, floor %.2f ms", percentile(missMs, 90), percentile(floorMs, 90))
	if ms.retries > 0 {
		latency = latency.note("%d invalidated reads were not MISS and were tried again", ms.retries)
	}
	return latency
}

// countMiss starts a second api-server whose MySQL and Redis connections go
// through counting proxies, forces countMisses misses through it and
// reports the commands per miss. The proxies see only this api-server's
// traffic, so other clients of the shared servers do not disturb the count.
func (b *bench) countMiss(ctx context.Context, mm *missMaker) ([]Row, error) {
	if len(b.w.redis.Addrs) != 1 {
		return nil, fmt.Errorf("counting Redis commands needs one Redis address, not %v", b.w.redis.Addrs)
	}
	mysqlProxy, err := newCountingProxy(fmt.Sprintf("%s:%d", b.w.mysql.Host, b.w.mysql.Port), mysqlCommands)
	if err != nil {
		return nil, err
	}
	defer mysqlProxy.close()
	redisProxy, err := newCountingProxy(b.w.redis.Addrs[0], respCommands)
	if err != nil {
		return nil, err
	}
	defer redisProxy.close()
	api, err := b.w.service(ctx, "api-server-counted", "api-server", b.w.serviceEnv(map[string]string{
		"MYSQL_HOST": "127.0.0.1", "MYSQL_PORT": mysqlProxy.port(), "REDIS_ADDRS": redisProxy.addr(),
	}))
	if err != nil {
		return nil, err
	}
	defer api.stop()
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
	defer client.CloseIdleConnections()
	url := api.URL + "/api/v1/techs"
	for range 3 { // connections opened, the fill script loaded
		if _, _, err := mm.miss(ctx, client, url); err != nil {
			return nil, err
		}
	}
	c := missCounts{mysql: mysqlProxy, redis: redisProxy, n: b.o.countMisses}
	if err := c.countMisses(ctx, mm, client, url); err != nil {
		return nil, err
	}
	if err := c.countHits(ctx, client, url); err != nil {
		return nil, err
	}
	if perr := mysqlProxy.parseErrors() + redisProxy.parseErrors(); perr > 0 {
		return nil, fmt.Errorf("the counting proxies could not read %d connections' commands", perr)
	}
	rows := c.rows()
	b.logf("per miss: %.2f MySQL queries, %.2f Redis writes", rows[0].Ours, rows[1].Ours)
	return rows, nil
}

// missCounts are the commands the counting proxies saw, by command name.
type missCounts struct {
	mysql, redis               *countingProxy
	n                          int            // misses to count
	mysqlMiss, redisMiss       map[string]int // during the misses' reads
	mysqlBetween, redisBetween map[string]int // while the bench invalidated, between reads
	mysqlHit, redisHit         map[string]int // during n hits
	notMiss                    int            // invalidated reads that were not MISS
}

// countMisses forces n misses. Each is counted from just before its read
// to just after: the invalidation before it also makes the api-server act
// (it receives the event), and that is counted apart.
func (c *missCounts) countMisses(ctx context.Context, mm *missMaker, client *http.Client, url string) error {
	c.mysqlMiss, c.redisMiss = map[string]int{}, map[string]int{}
	c.mysqlBetween, c.redisBetween = map[string]int{}, map[string]int{}
	add := func(into, before, after map[string]int) {
		for k, v := range delta(before, after) {
			into[k] += v
		}
	}
	for misses := 0; misses < c.n; {
		m0, r0 := c.mysql.snapshot(), c.redis.snapshot()
		if err := mm.invalidate(ctx); err != nil {
			return err
		}
		time.Sleep(5 * time.Millisecond) // the api-server has handled the event
		m1, r1 := c.mysql.snapshot(), c.redis.snapshot()
		_, xcache, _, err := timedGet(ctx, client, url)
		if err != nil {
			return err
		}
		time.Sleep(5 * time.Millisecond) // the proxies have counted what the read sent
		m2, r2 := c.mysql.snapshot(), c.redis.snapshot()
		add(c.mysqlBetween, m0, m1)
		add(c.redisBetween, r0, r1)
		if xcache != "MISS" {
			c.notMiss++
			if c.notMiss > 5*c.n {
				return fmt.Errorf("GET %s: too many invalidated reads were not MISS", url)
			}
			continue
		}
		add(c.mysqlMiss, m1, m2)
		add(c.redisMiss, r1, r2)
		misses++
	}
	return nil
}

// countHits reads n hits, for comparison.
func (c *missCounts) countHits(ctx context.Context, client *http.Client, url string) error {
	mysqlBefore, redisBefore := c.mysql.snapshot(), c.redis.snapshot()
	for range c.n {
		if _, _, _, err := timedGet(ctx, client, url); err != nil {
			return err
		}
	}
	time.Sleep(5 * time.Millisecond)
	c.mysqlHit, c.redisHit = delta(mysqlBefore, c.mysql.snapshot()), delta(redisBefore, c.redis.snapshot())
	return nil
}

// rows are the MySQL queries and the Redis writes per miss.
func (c *missCounts) rows() []Row {
	n := c.n
	queries := sumWhere(c.mysqlMiss, isMySQLQuery)
	writes := sumWhere(c.redisMiss, isRedisWrite)
	per := func(v int) float64 { return float64(v) / float64(n) }
	q := ownRow("cache miss: MySQL queries per miss", "", per(queries), atMost(1)).
		note("%d misses through a second api-server whose MySQL connections pass a counting proxy; commands seen: %s",
			n, describeCounts(c.mysqlMiss, n)).
		note("a query is a COM_QUERY or COM_STMT_EXECUTE; the driver fills the placeholders in itself (interpolateParams), so a query is one COM_QUERY, one round trip").
		note("%d hits read MySQL %d times", n, sumWhere(c.mysqlHit, isMySQLQuery))
	rw := ownRow("cache miss: Redis writes per miss", "", per(writes), atMost(1)).
		note("Redis commands per miss, counted by a proxy: %s (a write is any command that may change data; the fill is one EVALSHA of a script that checks the generation and writes the page)",
			describeCounts(c.redisMiss, n)).
		note("%d hits sent Redis: %s", n, describeCounts(c.redisHit, 1))
	if len(c.mysqlBetween)+len(c.redisBetween) > 0 {
		rw = rw.note("not counted above: between reads, while the bench invalidated the cache (INCR and DEL from its own connection, and a tech.created event), the api-server sent MySQL %s and Redis %s per invalidation",
			describeCounts(c.mysqlBetween, n+c.notMiss), describeCounts(c.redisBetween, n+c.notMiss))
	}
	if c.notMiss > 0 {
		q = q.note("%d invalidated reads were not MISS and were tried again; they are not in the count", c.notMiss)
	}
	return []Row{q, rw}
}
