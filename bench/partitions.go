package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/techlist/techlist/mysql"
	"github.com/techlist/techlist/testenv/rediscluster"
)

// The partitions scenario: POSTs with the worker storing, in streams mode,
// through a Redis Cluster of three masters the harness starts for it, with
// the stream in three partitions (STREAM_PARTITIONS=3) against one, in
// interleaved pairs. It has no target: on one machine the masters share
// its cores, so what it shows is where the time goes, per process and per
// master, for the reader to carry over to separate machines.

// partitionSide is one side of the pair: an api-server and a worker on the
// cluster with STREAM_PARTITIONS=n, writing a table of their own, and what
// they spent while measured.
type partitionSide struct {
	n           int
	api, worker *process
	table       string
	posts       int       // answered 202 in the measurements
	genCPU      float64   // the load generator's CPU seconds over them
	procs       []cpuProc // the processes whose CPU was read
	cpu         []float64 // CPU seconds of each of procs over them
	calls       []map[string]int64
}

// partitions runs the scenario; without redis-server on PATH it is
// skipped, unless it was asked for by name.
func (b *bench) partitions(ctx context.Context) ([]Row, error) {
	if err := rediscluster.Available(); err != nil {
		if b.o.only["partitions"] {
			return nil, fmt.Errorf("a Redis Cluster of our own: %w", err)
		}
		b.logf("partitions: skipped, no Redis Cluster can be started here: %v", err)
		return nil, nil
	}
	cl, err := rediscluster.Start(ctx, filepath.Join(b.w.tmp, "cluster"))
	if err != nil {
		return nil, err
	}
	defer cl.Stop()
	b.logf("Redis Cluster of %d masters: %s", len(cl.Addrs), strings.Join(cl.Addrs, ", "))
	masters := make([]goredis.UniversalClient, len(cl.Addrs))
	for i, a := range cl.Addrs {
		masters[i] = goredis.NewClient(&goredis.Options{Addr: a})
		defer masters[i].Close()
	}
	// The services stop (deferred below) before the cluster does.
	sides := map[int]*partitionSide{}
	for _, n := range []int{1, 3} {
		s, stop, err := b.startPartitionSide(ctx, cl.Addrs, n)
		if err != nil {
			return nil, err
		}
		defer stop()
		sides[n] = s
	}
	b.around = func(ctx context.Context, ours bool) (func(throughput) error, error) {
		s := sides[1]
		if ours {
			s = sides[3]
		}
		return b.measureSide(ctx, s, cl.Pids(), masters)
	}
	defer func() { b.around = nil }()
	res, err := b.pairs(ctx, "POST via cluster, 3 partitions vs 1", postTo(sides[3].api.URL), postTo(sides[1].api.URL))
	if err != nil {
		return nil, err
	}
	return []Row{b.partitionRow(ctx, res, sides[3], sides[1])}, nil
}

// startPartitionSide starts the worker and the api-server of one side, in
// streams mode on the cluster at addrs, with names and a table of their
// own; stop stops them and drops the table.
func (b *bench) startPartitionSide(ctx context.Context, addrs []string, n int) (s *partitionSide, stop func(), err error) {
	s = &partitionSide{n: n, table: "partitions_" + strconv.Itoa(n)}
	cfg := b.w.mysql
	cfg.Table = s.table
	if err := mysql.Migrate(ctx, cfg); err != nil {
		return nil, nil, err
	}
	stop = func() {
		for _, p := range []*process{s.api, s.worker} {
			if p != nil {
				p.stop()
			}
		}
		b.dropTable(s.table)
	}
	defer func() {
		if err != nil {
			stop()
		}
	}()
	names := fmt.Sprintf("%s-p%d", b.w.names, n)
	env := b.w.serviceEnv(map[string]string{
		"QUEUE_MODE": "streams", "STREAM_PARTITIONS": strconv.Itoa(n),
		"REDIS_ADDRS": strings.Join(addrs, ","), "REDIS_USERNAME": "", "REDIS_PASSWORD": "",
		"REDIS_CHANNEL": names, "REDIS_CACHE": names, "MYSQL_TABLE": s.table,
	})
	if s.worker, err = b.w.service(ctx, fmt.Sprintf("worker-server-p%d", n), "worker-server", env); err != nil {
		return nil, nil, err
	}
	if s.api, err = b.w.service(ctx, fmt.Sprintf("api-server-p%d", n), "api-server", env); err != nil {
		return nil, nil, err
	}
	return s, stop, nil
}

// cpuProcs are the processes a side's CPU is read from: the api-server
// when the load stops; the worker, each master and MariaDB once the worker
// has stored every POST accepted.
func (s *partitionSide) cpuProcs(masterPids []int, mariaDB int) []cpuProc {
	procs := []cpuProc{{name: "api-server", pid: s.api.Pid()}, {name: "worker-server", pid: s.worker.Pid(), late: true}}
	for i, pid := range masterPids {
		procs = append(procs, cpuProc{name: fmt.Sprintf("Redis master %d", i+1), pid: pid, late: true})
	}
	return append(procs, cpuProc{name: "MariaDB", pid: mariaDB, late: true})
}

// measureSide is the pairs' hook around one measurement of s: it waits
// until the worker has stored all the api-server published (the warm-up's
// too), reads the CPU of each process and the commands of each master,
// and after the measurement reads them again, the late ones once the
// worker has caught up again, adding what was spent to s.
func (b *bench) measureSide(ctx context.Context, s *partitionSide, masterPids []int, masters []goredis.UniversalClient) (func(throughput) error, error) {
	if _, _, err := b.caughtUp(ctx, s); err != nil {
		return nil, err
	}
	procs := s.cpuProcs(masterPids, pidListening(b.w.mysql.Port))
	calls0, err := commandsOf(ctx, masters)
	if err != nil {
		return nil, err
	}
	m := startCPU(procs)
	return func(t throughput) error {
		m.read(false)
		if _, _, err := b.caughtUp(ctx, s); err != nil {
			return err
		}
		m.read(true)
		calls1, err := commandsOf(ctx, masters)
		if err != nil {
			return err
		}
		s.posts += t.OK
		s.genCPU += t.CPU
		if s.cpu == nil {
			s.procs, s.cpu = procs, make([]float64, len(procs))
			s.calls = make([]map[string]int64, len(masters))
		}
		for i, v := range m.spent() {
			s.cpu[i] += v
		}
		for i := range masters {
			s.calls[i] = addCalls(s.calls[i], calls0[i], calls1[i])
		}
		return nil
	}, nil
}

// caughtUp waits until s's table holds a row for every POST its api-server
// published (api_publishes_total since it started: the table is its own),
// or it stopped growing (see waitRows), and returns both counts; the row
// reports a shortfall.
func (b *bench) caughtUp(ctx context.Context, s *partitionSide) (published, stored int, err error) {
	p, err := s.api.metric(ctx, publishedOK)
	if err != nil {
		return 0, 0, err
	}
	stored, err = b.waitRows(ctx, s.table, int(p), 60*time.Second)
	return int(p), stored, err
}

// commandsOf reads INFO commandstats of each master.
func commandsOf(ctx context.Context, masters []goredis.UniversalClient) ([]map[string]int64, error) {
	out := make([]map[string]int64, len(masters))
	for i, m := range masters {
		info, err := m.Info(ctx, "commandstats").Result()
		if err != nil {
			return nil, fmt.Errorf("INFO commandstats of master %d: %w", i+1, err)
		}
		if out[i], err = commandCalls(info); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// commandCalls returns the calls of each command from an INFO
// commandstats answer, whose lines read
// "cmdstat_xadd:calls=3,usec=40,usec_per_call=13.33,...". Commands a script
// runs are counted under their own names, as well as under EVALSHA.
func commandCalls(info string) (map[string]int64, error) {
	calls := map[string]int64{}
	for line := range strings.Lines(info) {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), "cmdstat_")
		if !ok {
			continue
		}
		name, stats, ok := strings.Cut(rest, ":")
		if !ok {
			return nil, fmt.Errorf("INFO commandstats: no ':' in %q", line)
		}
		n, found := int64(0), false
		for field := range strings.SplitSeq(stats, ",") {
			if v, ok := strings.CutPrefix(field, "calls="); ok {
				var err error
				if n, err = strconv.ParseInt(v, 10, 64); err != nil {
					return nil, fmt.Errorf("INFO commandstats: %s: %w", name, err)
				}
				found = true
			}
		}
		if !found {
			return nil, fmt.Errorf("INFO commandstats: no calls= in %q", line)
		}
		calls[name] = n
	}
	return calls, nil
}

// addCalls adds to sum the calls of each command from before to after.
func addCalls(sum, before, after map[string]int64) map[string]int64 {
	if sum == nil {
		sum = map[string]int64{}
	}
	for name, n := range after {
		sum[name] += n - before[name]
	}
	return sum
}

// partitionRow is the scenario's row: the two sides' rates, and in its
// notes where each side's time went, per process and per master, and
// whether every POST accepted was stored.
func (b *bench) partitionRow(ctx context.Context, res pairResult, three, one *partitionSide) Row {
	row := pairRow("POST /api/v1/techs via a 3-master Redis Cluster (streams), STREAM_PARTITIONS=3 vs 1", "req/s",
		res.ours, res.base, forTheRecord()).
		note("202 answers per second, the worker (TASK_COST=0) storing at the same time; ours: STREAM_PARTITIONS=3, baseline: STREAM_PARTITIONS=1, each an api-server and a worker of its own on a Redis Cluster of three masters the harness started on this machine (redis-server, no replicas), writing a table of its own; before each measurement the worker has stored everything published")
	if failed, kinds := failureNotes(append(append([]throughput{}, res.oursRuns...), res.baseRuns...)); failed+res.warmFailures > 0 {
		row = row.problem("%d requests were not answered 202 (%s)", failed+res.warmFailures, kinds)
	}
	for _, s := range []*partitionSide{three, one} {
		row = row.note("%s", b.describeSide(s))
		published, stored, err := b.caughtUp(ctx, s)
		switch {
		case err != nil:
			row = row.problem("STREAM_PARTITIONS=%d: could not count what was stored: %v", s.n, err)
		case stored < published:
			row = row.problem("STREAM_PARTITIONS=%d: %d POSTs published, %d rows stored", s.n, published, stored)
		default:
			row = row.note("STREAM_PARTITIONS=%d: %d POSTs published (warm-ups included), %d rows stored", s.n, published, stored)
		}
	}
	if spreadOver(three.calls) < 2 {
		row = row.note("with STREAM_PARTITIONS=3 every XADD went to one master, so this run measured one stream on both sides: the services built here do not read STREAM_PARTITIONS, or the three partitions' hash tags fell on one master")
	}
	return row.note("the three masters and everything else share this machine's cores, so a partition's master is a process of its own, not a machine of its own: docs/operations.md (Scaling) reads these figures for separate machines")
}

// describeSide says what one side spent per 1,000 POSTs over its
// measurements, per process, and the Redis commands and XADDs each master
// ran per POST.
func (b *bench) describeSide(s *partitionSide) string {
	if s.posts == 0 {
		return fmt.Sprintf("STREAM_PARTITIONS=%d: no POST answered, nothing to divide by", s.n)
	}
	var perMaster []string
	for i, c := range s.calls {
		all := int64(0)
		for _, n := range c {
			all += n
		}
		perMaster = append(perMaster, fmt.Sprintf("master %d %.2f (XADD %.2f)", i+1,
			float64(all)/float64(s.posts), float64(c["xadd"])/float64(s.posts)))
	}
	return fmt.Sprintf("STREAM_PARTITIONS=%d, over its %d measurements (%d POSTs): CPU seconds per 1,000 POSTs: %s; Redis commands per POST (INFO commandstats, a script's commands counted with it): %s",
		s.n, b.o.reps, s.posts, b.describeCPU(s.procs, s.cpu, s.genCPU, s.posts), strings.Join(perMaster, ", "))
}

// spreadOver returns how many masters ran XADDs.
func spreadOver(calls []map[string]int64) int {
	n := 0
	for _, c := range calls {
		if c["xadd"] > 0 {
			n++
		}
	}
	return n
}
