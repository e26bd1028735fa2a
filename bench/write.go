package main

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/techlist/techlist/mysql"
)

const publishedOK = `api_publishes_total{result="ok"}`

// The POST scenarios. accept: streams mode with no worker, the entries
// waiting in the stream, against a bare server answering a fixed 202.
// write: the same with the worker storing at the same time, in both modes,
// then a check that every POST published was stored, and the CPU each
// process spent per 1,000 POSTs.

var postBody = []byte(`{"text":"Redis Streams with consumer groups"}`)

// startBarePost starts the bare server answering a POST with a fixed 202.
func (b *bench) startBarePost(ctx context.Context) (*process, error) {
	id := newID()
	return b.w.startBare(ctx, "bare-post", http.StatusAccepted,
		[]byte(`{"id":"`+id+`","status":"queued"}`), "/api/v1/techs/"+id)
}

func postTo(url string) request {
	return request{method: http.MethodPost, url: url + "/api/v1/techs", body: postBody, contentType: "application/json", want: http.StatusAccepted}
}

// accept runs POSTs against an api-server in streams mode of its own with
// no worker: what the accept path costs alone. Between measurements the
// stream, its markers and the pending marks are deleted, so the shared
// Redis does not hold millions of them.
func (b *bench) accept(ctx context.Context) ([]Row, error) {
	names := b.w.names + "-accept"
	api, err := b.w.service(ctx, "api-server-accept", "api-server", b.w.serviceEnv(map[string]string{
		"QUEUE_MODE": "streams", "REDIS_CHANNEL": names, "REDIS_CACHE": names, "STREAM_MAX_LEN": "10000000",
	}))
	if err != nil {
		return nil, err
	}
	defer api.stop()
	bare, err := b.startBarePost(ctx)
	if err != nil {
		return nil, err
	}
	defer bare.stop()
	b.between = func(ctx context.Context) error { return deleteKeys(ctx, b.w.rdb, names+"*") }
	defer func() { b.between = nil }()
	res, err := b.pairs(ctx, "POST accept", postTo(api.URL), postTo(bare.URL))
	if err != nil {
		return nil, err
	}
	row := pairRow("POST /api/v1/techs, accept path alone (streams, no worker)", "req/s", res.ours, res.base, atLeastRatio(0.5)).
		note("202 answers per second from an api-server in streams mode with no worker: each POST's pending mark and its append-once XADD (a script, with its marker) go in one pipeline, shared by the POSTs in flight (streams mode keeps no pending index); the entries wait in the stream (deleted between measurements); the bare server reads the body and answers a fixed 202")
	if failed, kinds := failureNotes(res.oursRuns); failed+res.warmFailures > 0 {
		row = row.problem("%d requests were not answered 202 (%s)", failed+res.warmFailures, kinds)
	}
	cpu, err := b.cpuPer1000(ctx, postTo(api.URL), []cpuProc{
		{name: "api-server", pid: api.Pid()}, {name: "Redis", pid: pidListening(portOf(b.w.redis.Addrs[0]))},
	}, nil)
	if err != nil {
		return nil, err
	}
	if err := b.between(ctx); err != nil {
		return nil, err
	}
	return []Row{row.note("%s", cpu)}, nil
}

// write is the POST target with the worker storing, in both modes: pubsub
// on the stack every scenario shares, streams on a worker and api-server
// of its own writing a table of its own.
func (b *bench) write(ctx context.Context) ([]Row, error) {
	rows, err := b.writeMode(ctx, "pubsub", b.api, b.worker, b.w.mysql.Table)
	if err != nil {
		return nil, err
	}
	names := b.w.names + "-ws"
	cfg := b.w.mysql
	cfg.Table = "write_streams"
	if err := mysql.Migrate(ctx, cfg); err != nil {
		return nil, err
	}
	defer b.dropTable(cfg.Table)
	defer deleteKeys(context.WithoutCancel(ctx), b.w.rdb, names+"*")
	env := b.w.serviceEnv(map[string]string{
		"QUEUE_MODE": "streams", "REDIS_CHANNEL": names, "REDIS_CACHE": names, "MYSQL_TABLE": cfg.Table,
	})
	worker, err := b.w.service(ctx, "worker-server-ws", "worker-server", env)
	if err != nil {
		return nil, err
	}
	defer worker.stop()
	api, err := b.w.service(ctx, "api-server-ws", "api-server", env)
	if err != nil {
		return nil, err
	}
	defer api.stop()
	more, err := b.writeMode(ctx, "streams", api, worker, cfg.Table)
	if err != nil {
		return nil, err
	}
	return append(rows, more...), nil
}

// writeMode measures POSTs to api with worker storing into table, then
// checks that every POST published was stored.
func (b *bench) writeMode(ctx context.Context, mode string, api, worker *process, table string) ([]Row, error) {
	before, err := api.metric(ctx, publishedOK)
	if err != nil {
		return nil, err
	}
	rowsBefore, err := b.countRows(ctx, table)
	if err != nil {
		return nil, err
	}
	bare, err := b.startBarePost(ctx)
	if err != nil {
		return nil, err
	}
	defer bare.stop()
	res, err := b.pairs(ctx, "POST "+mode, postTo(api.URL), postTo(bare.URL))
	if err != nil {
		return nil, err
	}
	row := pairRow("POST /api/v1/techs, accepted and stored ("+mode+")", "req/s", res.ours, res.base, atLeastRatio(0.3)).
		note("202 answers per second; the worker (TASK_COST=0) consumes and stores at the same time; the bare server reads the body and answers a fixed 202")
	if failed, kinds := failureNotes(res.oursRuns); failed+res.warmFailures > 0 {
		row = row.problem("%d requests were not answered 202 (%s)", failed+res.warmFailures, kinds)
	}
	cpu, err := b.cpuPer1000(ctx, postTo(api.URL), []cpuProc{
		{name: "api-server", pid: api.Pid()},
		{name: "worker-server", pid: worker.Pid(), late: true},
		{name: "Redis", pid: pidListening(portOf(b.w.redis.Addrs[0])), late: true},
		{name: "MariaDB", pid: pidListening(b.w.mysql.Port), late: true},
	}, func(int) error {
		published, err := api.metric(ctx, publishedOK)
		if err != nil {
			return err
		}
		_, err = b.waitRows(ctx, table, rowsBefore+int(published-before), 60*time.Second)
		return err
	})
	if err != nil {
		return nil, err
	}
	row = row.note("%s; the worker, Redis and MariaDB are read once the worker has stored them all (Redis and MariaDB also serve whatever else runs on the machine)", cpu)
	loss, err := b.stored(ctx, mode, api, table, before, rowsBefore)
	if err != nil {
		return nil, err
	}
	return []Row{row, loss}, nil
}

// stored waits for the worker to store what api published since before
// (its api_publishes_total then) and says whether it all arrived.
func (b *bench) stored(ctx context.Context, mode string, api *process, table string, before float64, rowsBefore int) (Row, error) {
	after, err := api.metric(ctx, publishedOK)
	if err != nil {
		return Row{}, err
	}
	published := int(after - before)
	loadEnd := time.Now()
	stored, err := b.waitRows(ctx, table, rowsBefore+published, 60*time.Second)
	if err != nil {
		return Row{}, err
	}
	stored -= rowsBefore
	drained := time.Since(loadEnd)
	ratio := 0.0
	if published > 0 {
		ratio = float64(stored) / float64(published)
	}
	loss := ownRow(mode+": rows stored / POSTs published at full rate", "", ratio, atLeast(1)).
		note("%d POSTs published (api_publishes_total) during the POST measurements and warm-ups, %d rows stored, checked %.1f s after the load stopped",
			published, stored, drained.Seconds())
	if stored < published {
		loss = loss.problem("%d messages lost", published-stored)
	}
	b.logf("%s: %d published, %d stored", mode, published, stored)
	return loss, nil
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
