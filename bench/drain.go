package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/techlist/techlist"
	"github.com/techlist/techlist/mysql"
)

// streamPayloadField is the field of a stream entry holding the envelope,
// as redis.StreamPublisher writes it (checked by a test).
const streamPayloadField = "envelope"

// drain is the streams half of target 4: a worker started on a backlog of
// drainRows envelopes, against a plain batched-insert loop writing as many
// rows to the same database, in interleaved pairs. Each side gets a fresh
// table of the same schema.
func (b *bench) drain(ctx context.Context) ([]Row, error) {
	var ours, base []float64
	for i := range b.o.reps {
		sides := []func(context.Context, int) (float64, error){b.drainOnce, b.insertLoop}
		if i%2 == 1 {
			sides[0], sides[1] = sides[1], sides[0]
		}
		got := map[bool]float64{}
		for j, side := range sides {
			rate, err := side(ctx, i+1)
			if err != nil {
				return nil, err
			}
			got[(j == 0) == (i%2 == 0)] = rate
		}
		ours, base = append(ours, got[true]), append(base, got[false])
		b.logf("drain, pair %d: worker %.0f rows/s, batched inserts %.0f rows/s", i+1, got[true], got[false])
	}
	row := pairRow(fmt.Sprintf("worker drain, streams, %s-envelope backlog", thousands(b.o.drainRows)), "rows/s", ours, base, atLeastRatio(0.7)).
		note("from the worker's start until its %d rows are stored (worker_messages_total{result=\"stored\"}, then checked with COUNT(*)); the envelopes were added with pipelined XADDs before it started; BATCH_SIZE and the rest at their defaults, TASK_COST=0",
			b.o.drainRows).
		note("baseline: the same number of rows written by one connection in %d-row multi-row INSERTs, one transaction each, to a fresh table of the same schema", b.o.batchRows)
	return []Row{row}, nil
}

// drainOnce fills a stream of its own and times a streams-mode worker
// storing all of it into a fresh table.
func (b *bench) drainOnce(ctx context.Context, n int) (float64, error) {
	stream := fmt.Sprintf("%s-drain-%d", b.w.names, n)
	cfg := b.w.mysql
	cfg.Table = fmt.Sprintf("drain_%d", n)
	if err := mysql.Migrate(ctx, cfg); err != nil {
		return 0, err
	}
	defer b.dropTable(cfg.Table)
	if err := b.checkSchema(ctx, cfg.Table); err != nil {
		return 0, err
	}
	defer deleteKeys(context.WithoutCancel(ctx), b.w.rdb, stream+"*")
	if err := b.backlog(ctx, stream, b.o.drainRows); err != nil {
		return 0, err
	}
	start := time.Now()
	p, err := b.startDrainWorker(n, stream, cfg.Table)
	if err != nil {
		return 0, err
	}
	defer p.stop()
	elapsed, err := b.waitStored(ctx, p, start)
	if err != nil {
		return 0, err
	}
	if got, err := b.waitRows(ctx, cfg.Table, b.o.drainRows, 10*time.Second); err != nil {
		return 0, err
	} else if got != b.o.drainRows {
		return 0, fmt.Errorf("%s reported %d rows stored, the table holds %d", p.Name, b.o.drainRows, got)
	}
	if peak, err := p.peakRSS(); err == nil {
		b.drainPeaks = append(b.drainPeaks, peak)
	}
	if err := p.stop(); err != nil {
		return 0, err
	}
	return float64(b.o.drainRows) / elapsed.Seconds(), nil
}

// startDrainWorker starts the streams-mode worker of pair n on stream and
// table, with the -env and then the -drain-env flags.
func (b *bench) startDrainWorker(n int, stream, table string) (*process, error) {
	extra := map[string]string{}
	for k, v := range b.o.drainEnv {
		extra[k] = v
	}
	for k, v := range map[string]string{"QUEUE_MODE": "streams", "REDIS_CHANNEL": stream, "REDIS_CACHE": stream, "MYSQL_TABLE": table} {
		extra[k] = v
	}
	return b.w.start(fmt.Sprintf("worker-server-streams-%d", n), filepath.Join(b.w.tmp, "bin", "worker-server"), nil, b.w.serviceEnv(extra))
}

// waitStored waits until p reports the backlog stored, and returns the
// time since start. It logs the CPU seconds per 1,000 rows of the worker
// (start-up included), Redis and MariaDB meanwhile, which other load on
// the machine moves less than the rate.
func (b *bench) waitStored(ctx context.Context, p *process, start time.Time) (time.Duration, error) {
	want := float64(b.o.drainRows)
	deadline := start.Add(5 * time.Minute)
	procs := []cpuProc{{name: "worker", pid: p.Pid()}, {name: "Redis", pid: pidListening(portOf(b.w.redis.Addrs[0]))},
		{name: "MariaDB", pid: pidListening(b.w.mysql.Port)}}
	m := startCPU(procs)
	m.before[0] = 0 // the worker's own, since it started
	for {
		stored, err := p.metric(ctx, `worker_messages_total{result="stored"}`)
		if err == nil && stored >= want {
			elapsed := time.Since(start)
			m.read(false)
			b.logf("%s: %.0f rows/s; CPU s per 1,000 rows: %s", p.Name, want/elapsed.Seconds(), b.describeDrainCPU(procs, m.spent()))
			return elapsed, nil
		}
		select {
		case <-p.Done():
			return 0, fmt.Errorf("%s exited while draining (%v); its log ends:\n%s", p.Name, p.Err(), p.LogTail())
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(25 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("%s stored fewer than %d rows in 5 minutes", p.Name, b.o.drainRows)
		}
	}
}

// describeDrainCPU lists what each of procs spent per 1,000 rows.
func (b *bench) describeDrainCPU(procs []cpuProc, spent []float64) string {
	parts := make([]string, len(procs))
	for i, p := range procs {
		parts[i] = fmt.Sprintf("%s %.3f", p.name, spent[i]*1000/float64(b.o.drainRows))
		if p.pid == 0 {
			parts[i] = p.name + " n/a (not found)"
		}
	}
	return strings.Join(parts, ", ")
}

// backlog adds n envelopes to stream, a thousand per pipeline.
func (b *bench) backlog(ctx context.Context, stream string, n int) error {
	now := time.Now()
	for done := 0; done < n; {
		k := min(1000, n-done)
		_, err := b.w.rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
			for j := range k {
				payload, err := techlist.NewEnvelope(newID(), fmt.Sprintf("backlog tech %d", done+j), now).Encode()
				if err != nil {
					return err
				}
				p.XAdd(ctx, &goredis.XAddArgs{Stream: stream, Values: []any{streamPayloadField, payload}})
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("fill stream %s: %w", stream, err)
		}
		done += k
	}
	return nil
}

// insertLoop is the baseline: drainRows rows written to a fresh table by
// one connection, batchRows per multi-row INSERT, one transaction each.
func (b *bench) insertLoop(ctx context.Context, n int) (float64, error) {
	cfg := b.w.mysql
	cfg.Table = fmt.Sprintf("base_%d", n)
	if err := mysql.Migrate(ctx, cfg); err != nil {
		return 0, err
	}
	defer b.dropTable(cfg.Table)
	if err := b.checkSchema(ctx, cfg.Table); err != nil {
		return 0, err
	}
	now := mysql.Now()
	rows := make([]techlist.Tech, b.o.drainRows)
	for i := range rows {
		rows[i] = techlist.Tech{ID: newID(), Text: fmt.Sprintf("backlog tech %d", i), Priority: techlist.PriorityMedium,
			SubmittedAt: now, CreatedAt: now}
	}
	conn, err := b.w.db.Connx(ctx)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	insert := func(k int) string {
		return "INSERT INTO `" + cfg.Table + "` (id, text, priority, submitted_at, created_at) VALUES " +
			strings.TrimSuffix(strings.Repeat("(?,?,?,?,?),", k), ",")
	}
	full := insert(b.o.batchRows)
	start := time.Now()
	for from := 0; from < len(rows); from += b.o.batchRows {
		batch := rows[from:min(from+b.o.batchRows, len(rows))]
		q := full
		if len(batch) < b.o.batchRows {
			q = insert(len(batch))
		}
		args := make([]any, 0, 5*len(batch))
		for _, t := range batch {
			args = append(args, t.ID, t.Text, string(t.Priority), t.SubmittedAt, t.CreatedAt)
		}
		tx, err := conn.BeginTxx(ctx, nil)
		if err != nil {
			return 0, err
		}
		if _, err := tx.ExecContext(ctx, q, args...); err != nil {
			tx.Rollback()
			return 0, fmt.Errorf("batched insert: %w", err)
		}
		if err := tx.Commit(); err != nil {
			return 0, fmt.Errorf("batched insert: commit: %w", err)
		}
	}
	elapsed := time.Since(start)
	if got, err := b.countRows(ctx, cfg.Table); err != nil {
		return 0, err
	} else if got != len(rows) {
		return 0, fmt.Errorf("batched insert: %d rows in %s, want %d", got, cfg.Table, len(rows))
	}
	return float64(len(rows)) / elapsed.Seconds(), nil
}

// checkSchema fails unless table has exactly the schema of the services'
// own table (columns with submitted_at, types, character sets, every
// index), so both sides of the drain pair write the same rows into the
// same structure.
func (b *bench) checkSchema(ctx context.Context, table string) error {
	want, err := b.schemaOf(ctx, b.w.mysql.Table)
	if err != nil {
		return err
	}
	got, err := b.schemaOf(ctx, table)
	if err != nil {
		return err
	}
	if got != want {
		return fmt.Errorf("table %s does not have the services' schema:\n%s\nwant:\n%s", table, got, want)
	}
	return nil
}

// schemaOf returns SHOW CREATE TABLE of table, with its name taken out.
func (b *bench) schemaOf(ctx context.Context, table string) (string, error) {
	var name, ddl string
	if err := b.w.db.QueryRowContext(ctx, "SHOW CREATE TABLE `"+table+"`").Scan(&name, &ddl); err != nil {
		return "", fmt.Errorf("schema of %s: %w", table, err)
	}
	return strings.Replace(ddl, "`"+table+"`", "`?`", 1), nil
}

func (b *bench) dropTable(table string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, t := range []string{table, table + "_schema_migrations"} {
		if _, err := b.w.db.ExecContext(ctx, "DROP TABLE IF EXISTS `"+t+"`"); err != nil {
			b.logf("drop table %s: %v", t, err)
		}
	}
}

// memory is target 6: the peak resident set size (VmHWM) of each service
// process, read at the end, after everything above.
func (b *bench) memory() ([]Row, error) {
	const mb = 1 << 20
	var rows []Row
	for _, p := range []*process{b.api, b.worker} {
		peak, err := p.peakRSS()
		if err != nil {
			return nil, err
		}
		what := p.Name
		if p == b.worker {
			what += " (pubsub)"
		}
		rows = append(rows, ownRow(what+" peak RSS (VmHWM)", "MB", float64(peak)/mb, below(64)).
			note("the process that served every scenario above, read at the end"))
	}
	if len(b.drainPeaks) > 0 {
		peak := b.drainPeaks[0]
		for _, p := range b.drainPeaks {
			peak = max(peak, p)
		}
		rows = append(rows, ownRow("worker-server (streams drain) peak RSS (VmHWM)", "MB", float64(peak)/mb, below(64)).
			note("the largest of the %d streams-mode workers, each read when its backlog was stored", len(b.drainPeaks)))
	}
	return rows, nil
}

// thousands writes n with commas: 100000 is "100,000".
func thousands(n int) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
