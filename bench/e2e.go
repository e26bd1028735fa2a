package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"
	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/techlist/techlist"
	"github.com/techlist/techlist/redis"
)

// endToEnd is target 5: POSTs at a constant rate, and for each accepted
// one the time from sending it to its tech.created event, which the worker
// publishes right after the row is committed (and the list cache
// invalidated), so the row is visible from then on.
func (b *bench) endToEnd(ctx context.Context) ([]Row, error) {
	events, err := watchEvents(ctx, b.w.rdb, redis.EventsChannel(b.w.names))
	if err != nil {
		return nil, err
	}
	defer events.stop()
	var runs []e2eRun
	for rep := range b.o.e2eReps {
		run, err := b.e2eRun(ctx, events)
		if err != nil {
			return nil, err
		}
		runs = append(runs, run)
		b.logf("end to end, run %d: p50 %.2f ms, p99 %.2f ms, %d/%d events", rep+1, run.p50, run.p99, run.matched, run.accepted)
	}
	return b.e2eRows(runs), nil
}

// e2eRows are the p50 and p99 rows of the runs: the medians of the runs'
// percentiles, each run described under the p50 row.
func (b *bench) e2eRows(runs []e2eRun) []Row {
	var p50s, p99s []float64
	for _, run := range runs {
		p50s, p99s = append(p50s, run.p50), append(p99s, run.p99)
	}
	what := fmt.Sprintf("end to end at %d POST/s, POST sent to tech.created", b.o.e2eRate)
	p50 := ownRow(what+", p50", "ms", median(p50s), below(10))
	p99 := ownRow(what+", p99", "ms", median(p99s), below(50))
	for i, run := range runs {
		p50 = p50.note("%s", run.note(i+1))
	}
	if b.o.e2eReps > 1 {
		p50 = p50.note("the figures are the medians of the runs' percentiles")
		p50.Samples, p99.Samples = &Samples{Ours: p50s}, &Samples{Ours: p99s}
	}
	p99 = p99.note("the runs are described under the p50 row")
	for _, run := range runs {
		for _, pr := range run.problems() {
			p50, p99 = p50.problem("%s", pr), p99.problem("%s", pr)
		}
	}
	return []Row{p50, p99}
}

// eventTimes records when each tech's tech.created event arrived.
type eventTimes struct {
	mu   sync.Mutex
	seen map[string]time.Time
	stop func() // ends the subscription and waits for its goroutine
}

// watchEvents subscribes to channel and records, until stop, when each
// tech's event arrives.
func watchEvents(ctx context.Context, rdb goredis.UniversalClient, channel string) (*eventTimes, error) {
	sub, err := redis.SubscribeEvents(ctx, rdb, channel)
	if err != nil {
		return nil, err
	}
	e := &eventTimes{seen: map[string]time.Time{}}
	recvCtx, stopRecv := context.WithCancel(ctx)
	recvDone := make(chan struct{})
	go func() {
		defer close(recvDone)
		for {
			ev, err := sub.Receive(recvCtx)
			at := time.Now()
			if err != nil {
				if recvCtx.Err() != nil {
					return
				}
				var bad *techlist.BadEventError
				if !errors.As(err, &bad) {
					time.Sleep(10 * time.Millisecond) // the next Receive reconnects
				}
				continue
			}
			e.mu.Lock()
			e.seen[ev.Tech.ID] = at
			e.mu.Unlock()
		}
	}()
	e.stop = func() {
		stopRecv()
		<-recvDone
		sub.Close()
	}
	return e, nil
}

// latencies returns, in ms, the time from each id's send to its event, for
// the ids whose event has arrived.
func (e *eventTimes) latencies(sentAt map[string]time.Time) []float64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	var lat []float64
	for id, at := range sentAt {
		if got, ok := e.seen[id]; ok {
			lat = append(lat, millis(got.Sub(at)))
		}
	}
	return lat
}

// waitLatencies waits limit at most for every id's event, and returns the
// latencies of those that arrived.
func (e *eventTimes) waitLatencies(sentAt map[string]time.Time, limit time.Duration) []float64 {
	deadline := time.Now().Add(limit)
	for {
		lat := e.latencies(sentAt)
		if len(lat) == len(sentAt) || time.Now().After(deadline) {
			return lat
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type e2eRun struct {
	sent, accepted, matched int
	wanted                  int // POSTs per second asked for
	failed                  map[string]int
	rate                    float64 // achieved POSTs per second
	p50, p90, p99, max      float64 // sent to event, ms
	postP50, postP99        float64 // POST latency, ms
}

func (r e2eRun) note(n int) string {
	return fmt.Sprintf("run %d: %d POSTs sent at %.0f/s, %d accepted, %d events matched; sent to event p50 %.2f, p90 %.2f, p99 %.2f, max %.2f ms; POST answered p50 %.2f, p99 %.2f ms",
		n, r.sent, r.rate, r.accepted, r.matched, r.p50, r.p90, r.p99, r.max, r.postP50, r.postP99)
}

func (r e2eRun) problems() []string {
	var out []string
	if r.accepted < r.sent {
		out = append(out, fmt.Sprintf("%d of %d POSTs not accepted (%v)", r.sent-r.accepted, r.sent, r.failed))
	}
	if r.rate < 0.95*float64(r.wanted) {
		out = append(out, fmt.Sprintf("POSTs went out at %.0f/s, short of the %d/s asked for: the load generator or the server fell behind", r.rate, r.wanted))
	}
	if r.matched < r.accepted {
		out = append(out, fmt.Sprintf("%d of %d accepted techs had no tech.created event within 10 s", r.accepted-r.matched, r.accepted))
	}
	return out
}

// e2eRun sends POSTs at e2eRate for the warm-up, not counted, then for
// e2eDuration, and matches the ids of the latter (from the Location
// header) with the events seen.
func (b *bench) e2eRun(ctx context.Context, events *eventTimes) (e2eRun, error) {
	target := vegeta.Target{Method: http.MethodPost, URL: b.api.URL + "/api/v1/techs",
		Body: []byte(`{"text":"end to end"}`), Header: http.Header{"Content-Type": {"application/json"}}}
	if b.o.warmup > 0 {
		b.attack(ctx, target, b.o.warmup, func(*vegeta.Result) {})
	}
	run := e2eRun{failed: map[string]int{}, wanted: b.o.e2eRate}
	sentAt := map[string]time.Time{}
	var postLat []float64
	var first, last time.Time
	b.attack(ctx, target, b.o.e2eDuration, func(res *vegeta.Result) {
		run.sent++
		if first.IsZero() || res.Timestamp.Before(first) {
			first = res.Timestamp
		}
		last = later(last, res.Timestamp)
		postLat = append(postLat, millis(res.Latency))
		switch {
		case res.Code == http.StatusAccepted:
			run.accepted++
			sentAt[path.Base(res.Headers.Get("Location"))] = res.Timestamp
		case res.Code != 0:
			run.failed[fmt.Sprintf("status %d", res.Code)]++
		default:
			run.failed[shortError(res.Error)]++
		}
	})
	if err := ctx.Err(); err != nil {
		return run, err
	}
	if span := last.Sub(first).Seconds(); span > 0 {
		run.rate = float64(run.sent-1) / span
	}
	lat := events.waitLatencies(sentAt, 10*time.Second) // the stragglers' events
	run.matched = len(lat)
	run.p50, run.p90, run.p99, run.max = percentile(lat, 50), percentile(lat, 90), percentile(lat, 99), percentile(lat, 100)
	run.postP50, run.postP99 = percentile(postLat, 50), percentile(postLat, 99)
	return run, nil
}

// attack sends target at e2eRate for d and hands each result to each.
func (b *bench) attack(ctx context.Context, target vegeta.Target, d time.Duration, each func(*vegeta.Result)) {
	client, closeIdle := attackClient()
	defer closeIdle()
	atk := vegeta.NewAttacker(vegeta.Client(client), vegeta.KeepAlive(true), vegeta.MaxBody(0), vegeta.Timeout(10*time.Second), vegeta.Workers(20))
	stop := context.AfterFunc(ctx, func() { atk.Stop() })
	defer stop()
	for res := range atk.Attack(vegeta.NewStaticTargeter(target), vegeta.Rate{Freq: b.o.e2eRate, Per: time.Second}, d, "") {
		each(res)
	}
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
