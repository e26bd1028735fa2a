package redis

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/techlist/techlist"
)

// IntakeQueue is the queue an Intake publishes to: *Publisher (pub/sub),
// *StreamPublisher, or *PartitionedPublisher.
type IntakeQueue interface {
	publishCmd(ctx context.Context, id string, payload []byte) *goredis.Cmd
	published(cmd *goredis.Cmd) error
}

// Intake accepts envelopes for the worker in one Redis round trip each:
// the pending mark, its index entry (when an index is kept: see
// NewPendingMarks) and the publish (the pub/sub script,
// or the stream's append-once script with its marker) go in one pipeline,
// which concurrent callers share through an AutoPipeline. The mark goes
// first, so a reader that sees the entry sees the mark.
type Intake struct {
	pipe       *AutoPipeline
	queue      IntakeQueue
	pending    *PendingIndex
	pendingTTL time.Duration
}

// NewIntake returns an Intake publishing to queue through pipe, with
// pending marks kept in pending for pendingTTL.
func NewIntake(pipe *AutoPipeline, queue IntakeQueue, pending *PendingIndex, pendingTTL time.Duration) *Intake {
	return &Intake{pipe: pipe, queue: queue, pending: pending, pendingTTL: pendingTTL}
}

// Publish marks env.ID pending and puts env on the queue. It returns nil
// only when both the mark and the publish took; techlist.ErrNoSubscribers
// or techlist.ErrQueueFull when the queue refused it; techlist.ErrNotSent
// (wrapped) when nothing reached Redis; any other error leaves it unknown
// whether env was queued. A publish that took while its mark did not is
// such an unknown outcome, not a success: a 202 promises the mark (no 404
// while the worker may still store the tech), and publishing again is
// harmless (the stream appends an id once; pub/sub stores one row).
func (in *Intake) Publish(ctx context.Context, env techlist.Envelope) error {
	payload, err := env.Encode()
	if err != nil {
		return err
	}
	set, index := in.pending.markCmds(ctx, env.ID, in.pendingTTL)
	pub := in.queue.publishCmd(ctx, env.ID, payload)
	cmds := []goredis.Cmder{set, pub}
	if index != nil { // the mark, its index entry, the publish
		cmds = []goredis.Cmder{set, index, pub}
	}
	if err := in.send(ctx, cmds); err != nil {
		return err
	}
	pubErr := in.queue.published(pub)
	if notSent(pub.Err()) {
		return fmt.Errorf("%w: %w", techlist.ErrNotSent, pubErr)
	}
	if pubErr != nil {
		return pubErr
	}
	markErr := set.Err()
	if index != nil {
		markErr = errors.Join(markErr, index.Err())
	}
	if err := markErr; err != nil {
		return fmt.Errorf("queued %s, but its pending mark was not set: %w", env.ID, err)
	}
	return nil
}

// registrar is a queue that registers itself once, with the first
// publishes (see PartitionedPublisher): its registration rides in their
// pipeline until one succeeded.
type registrar interface {
	registerCmd(ctx context.Context) goredis.Cmder
	registeredBy(cmd goredis.Cmder, sendErr error)
}

func (in *Intake) send(ctx context.Context, cmds []goredis.Cmder) error {
	r, ok := in.queue.(registrar)
	if !ok {
		return in.pipe.Do(ctx, cmds...)
	}
	reg := r.registerCmd(ctx)
	if reg == nil {
		return in.pipe.Do(ctx, cmds...)
	}
	err := in.pipe.Do(ctx, append(cmds, reg)...)
	r.registeredBy(reg, err)
	return err
}

// notSent reports whether err says the command never reached Redis: no
// connection could be made (the last of go-redis's attempts), or none was
// free in time.
func notSent(err error) bool {
	var opErr *net.OpError
	return errors.Is(err, goredis.ErrPoolTimeout) || errors.Is(err, techlist.ErrNotSent) ||
		(errors.As(err, &opErr) && opErr.Op == "dial")
}
