package main

import (
	"context"
	"fmt"
	"net/http"
	"time"
)

const publishedOK = `api_publishes_total{result="ok"}`

// write is target 3, and the pubsub half of target 4: POSTs at full rate
// against a bare server answering a fixed 202, then a check that every
// POST the api-server published was stored by the worker.
func (b *bench) write(ctx context.Context) ([]Row, error) {
	before, err := b.api.metric(ctx, publishedOK)
	if err != nil {
		return nil, err
	}
	rowsBefore, err := b.countRows(ctx, b.w.mysql.Table)
	if err != nil {
		return nil, err
	}
	id := newID()
	bare, err := b.w.startBare(ctx, "bare-post", http.StatusAccepted,
		[]byte(`{"id":"`+id+`","status":"queued"}`), "/api/v1/techs/"+id)
	if err != nil {
		return nil, err
	}
	defer bare.stop()
	body := []byte(`{"text":"Redis Streams with consumer groups"}`)
	res, err := b.pairs(ctx, "POST",
		request{method: http.MethodPost, url: b.api.URL + "/api/v1/techs", body: body, contentType: "application/json", want: http.StatusAccepted},
		request{method: http.MethodPost, url: bare.URL + "/api/v1/techs", body: body, contentType: "application/json", want: http.StatusAccepted})
	if err != nil {
		return nil, err
	}
	row := pairRow("POST /api/v1/techs, accepted and published (pubsub)", "req/s", res.ours, res.base, atLeastRatio(0.4)).
		note("202 answers per second; the worker (TASK_COST=0) consumes and stores at the same time; the bare server reads the body and answers a fixed 202")
	if failed, kinds := failureNotes(res.oursRuns); failed+res.warmFailures > 0 {
		row = row.problem("%d requests were not answered 202 (%s)", failed+res.warmFailures, kinds)
	}

	after, err := b.api.metric(ctx, publishedOK)
	if err != nil {
		return nil, err
	}
	published := int(after - before)
	loadEnd := time.Now()
	stored, err := b.waitRows(ctx, b.w.mysql.Table, rowsBefore+published, 60*time.Second)
	if err != nil {
		return nil, err
	}
	stored -= rowsBefore
	drained := time.Since(loadEnd)
	ratio := 0.0
	if published > 0 {
		ratio = float64(stored) / float64(published)
	}
	loss := ownRow("pubsub: rows stored / POSTs published at full rate", "", ratio, atLeast(1)).
		note("%d POSTs published (api_publishes_total) during the POST measurements and warm-ups, %d rows stored, checked %.1f s after the load stopped",
			published, stored, drained.Seconds())
	if stored < published {
		loss = loss.problem("%d messages lost", published-stored)
	}
	b.logf("pubsub: %d published, %d stored", published, stored)
	return []Row{row, loss}, nil
}

func (b *bench) countRows(ctx context.Context, table string) (int, error) {
	var n int
	if err := b.w.db.GetContext(ctx, &n, "SELECT COUNT(*) FROM `"+table+"`"); err != nil {
		return 0, fmt.Errorf("count rows of %s: %w", table, err)
	}
	return n, nil
}

// waitRows polls the table's row count until it reaches want, or it has
// not grown for 10 seconds, or limit has passed; it returns the last count.
func (b *bench) waitRows(ctx context.Context, table string, want int, limit time.Duration) (int, error) {
	deadline := time.Now().Add(limit)
	last, lastGrew := -1, time.Now()
	for {
		n, err := b.countRows(ctx, table)
		if err != nil {
			return 0, err
		}
		if n >= want {
			return n, nil
		}
		if n > last {
			last, lastGrew = n, time.Now()
		}
		if time.Now().After(deadline) || time.Since(lastGrew) > 10*time.Second {
			return n, nil
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}
