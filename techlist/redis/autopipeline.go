package redis

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	goredis "github.com/redis/go-redis/v9"
	"github.com/techlist/techlist"
)

// AutoPipeline sends the commands of concurrent callers together: while
// one pipeline is on the wire, the callers that arrive queue their
// commands, and the next flush sends all of them (up to a batch's worth)
// as one pipeline, the way rueidis auto-pipelines and databases
// group-commit. Each caller waits for its own commands and reads their
// results and errors as usual, so one caller's failing command does not
// fail the others'.
//
// It is bounded: at most maxBatch callers per pipeline, and at most
// queueLen callers waiting for a flush; past that a caller waits for room
// (or for its context), so memory never grows with the load. On a cluster
// client, go-redis splits each pipeline by slot, so every command must
// keep its keys in one slot, as it would alone.
type AutoPipeline struct {
	rdb      goredis.UniversalClient
	maxBatch int
	jobs     chan *pipelineJob
	mu       sync.RWMutex // guards closed against a send on jobs while it is closed
	closed   bool
	done     chan struct{}
	blocked  atomic.Int32 // callers waiting for room in jobs
	// beforeFlush, when set (by tests), is called with each batch's size
	// before it is sent.
	beforeFlush func(n int)
}

// pipelineJob is one caller's commands.
type pipelineJob struct {
	ctx  context.Context
	cmds []goredis.Cmder
	done chan struct{} // receives once cmds hold their results
}

// jobs are reused: two allocations a POST fewer. A job whose caller gave
// up is not put back (the flusher may still signal it).
var jobPool = sync.Pool{New: func() any { return &pipelineJob{done: make(chan struct{}, 1)} }}

func (j *pipelineJob) release() {
	j.ctx, j.cmds = nil, nil
	jobPool.Put(j)
}

// ErrPipelineClosed is returned to a caller of a closed AutoPipeline: its
// commands were not sent.
var ErrPipelineClosed = fmt.Errorf("redis: the auto-pipeline is closed: %w", techlist.ErrNotSent)

// NewAutoPipeline starts an AutoPipeline on rdb sending at most maxBatch
// callers' commands per pipeline, with as many more waiting for the next
// flush. Close stops it; it does not close rdb.
func NewAutoPipeline(rdb goredis.UniversalClient, maxBatch int) *AutoPipeline {
	maxBatch = max(maxBatch, 1)
	a := &AutoPipeline{rdb: rdb, maxBatch: maxBatch,
		jobs: make(chan *pipelineJob, maxBatch), done: make(chan struct{})}
	go a.run()
	return a
}

// Do sends cmds in the next pipeline and waits until they hold their
// results; each command's own error is in it (cmd.Err()). Do returns an
// error only when the commands were not sent (ErrPipelineClosed, or ctx
// ended while they waited for room; both wrap techlist.ErrNotSent), or when ctx ended while they were on
// the wire, in which case they may or may not have run.
func (a *AutoPipeline) Do(ctx context.Context, cmds ...goredis.Cmder) error {
	job := jobPool.Get().(*pipelineJob)
	job.ctx, job.cmds = ctx, cmds
	if err := a.enqueue(ctx, job); err != nil {
		job.release()
		return err
	}
	select {
	case <-job.done:
		job.release()
		return nil
	case <-ctx.Done():
		return fmt.Errorf("redis: waiting for the pipeline: %w", ctx.Err())
	}
}

func (a *AutoPipeline) enqueue(ctx context.Context, job *pipelineJob) error {
	a.mu.RLock()
	defer a.mu.RUnlock()
	if a.closed {
		return ErrPipelineClosed
	}
	select {
	case a.jobs <- job:
		return nil
	default:
	}
	a.blocked.Add(1)
	defer a.blocked.Add(-1)
	select {
	case a.jobs <- job:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("redis: waiting for room in the pipeline: %w: %w", techlist.ErrNotSent, ctx.Err())
	}
}

// Close sends what was queued, stops the flusher and waits for it. Later
// calls of Do get ErrPipelineClosed.
func (a *AutoPipeline) Close() error {
	a.mu.Lock()
	if !a.closed {
		a.closed = true
		close(a.jobs)
	}
	a.mu.Unlock()
	<-a.done
	return nil
}

// run is the flusher: it takes the first waiting job, then every other
// already waiting, up to maxBatch, and sends them as one pipeline.
func (a *AutoPipeline) run() {
	defer close(a.done)
	batch := make([]*pipelineJob, 0, a.maxBatch)
	for job := range a.jobs {
		batch = append(batch[:0], job)
	fill:
		for len(batch) < a.maxBatch {
			select {
			case next, ok := <-a.jobs:
				if !ok {
					break fill
				}
				batch = append(batch, next)
			default:
				break fill
			}
		}
		a.flush(batch)
		clear(batch) // let the jobs go
	}
}

// flush sends the live jobs of batch as one pipeline and wakes their
// callers. A job whose caller has gone already is not sent.
func (a *AutoPipeline) flush(batch []*pipelineJob) {
	if a.beforeFlush != nil {
		a.beforeFlush(len(batch))
	}
	pipe := a.rdb.Pipeline()
	for _, job := range batch {
		if err := job.ctx.Err(); err != nil {
			setErr(job.cmds, err)
			continue
		}
		for _, cmd := range job.cmds {
			_ = pipe.Process(context.Background(), cmd)
		}
	}
	if pipe.Len() > 0 {
		// Each command carries its own error; the callers read those.
		_, _ = pipe.Exec(context.Background())
		a.retryNoScript(batch)
	}
	for _, job := range batch {
		job.done <- struct{}{} // its caller may reuse it from here on
	}
}

// retryNoScript resends, once, the script calls that Redis refused with
// NOSCRIPT (a restarted or failed-over server has an empty script cache):
// NOSCRIPT means the script did not run, so sending it again after
// loading the scripts runs it once.
func (a *AutoPipeline) retryNoScript(batch []*pipelineJob) {
	var again []goredis.Cmder
	var orig []*goredis.Cmd
	for _, job := range batch {
		for _, cmd := range job.cmds {
			if c, ok := cmd.(*goredis.Cmd); ok && goredis.HasErrorPrefix(c.Err(), "NOSCRIPT") {
				again = append(again, goredis.NewCmd(context.Background(), c.Args()...))
				orig = append(orig, c)
			}
		}
	}
	if len(again) == 0 {
		return
	}
	ctx := context.Background()
	for _, s := range pipelineScripts {
		if err := s.Load(ctx, a.rdb).Err(); err != nil {
			return // the callers keep their NOSCRIPT errors
		}
	}
	pipe := a.rdb.Pipeline()
	for _, cmd := range again {
		_ = pipe.Process(ctx, cmd)
	}
	_, _ = pipe.Exec(ctx)
	for i, cmd := range again {
		orig[i].SetVal(cmd.(*goredis.Cmd).Val())
		orig[i].SetErr(cmd.Err())
	}
}

func setErr(cmds []goredis.Cmder, err error) {
	for _, cmd := range cmds {
		cmd.SetErr(err)
	}
}

// pipelineScripts are the scripts sent through an AutoPipeline by EVALSHA
// (see evalSha), loaded again when Redis has lost them.
var pipelineScripts = []*goredis.Script{addPending, publishToWorker, appendOnce}

// evalSha returns an EVALSHA of s, to be sent through an AutoPipeline
// (which loads the scripts on NOSCRIPT); its result is in the command.
func evalSha(ctx context.Context, s *goredis.Script, keys []string, args ...any) *goredis.Cmd {
	cmdArgs := make([]any, 0, 3+len(keys)+len(args))
	cmdArgs = append(cmdArgs, "evalsha", s.Hash(), len(keys))
	for _, k := range keys {
		cmdArgs = append(cmdArgs, k)
	}
	cmdArgs = append(cmdArgs, args...)
	return goredis.NewCmd(ctx, cmdArgs...)
}

// processScript sends cmd, an evalSha, alone; on NOSCRIPT it loads the
// script's source and sends it again, as Script.Run does.
func processScript(ctx context.Context, rdb goredis.UniversalClient, cmd *goredis.Cmd) {
	_ = rdb.Process(ctx, cmd)
	if !goredis.HasErrorPrefix(cmd.Err(), "NOSCRIPT") {
		return
	}
	for _, s := range pipelineScripts {
		if err := s.Load(ctx, rdb).Err(); err != nil {
			return // cmd keeps its NOSCRIPT error
		}
	}
	_ = rdb.Process(ctx, cmd)
}
