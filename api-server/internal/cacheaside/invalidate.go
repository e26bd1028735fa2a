package cacheaside

import (
	"context"
	"log/slog"

	"github.com/techlist/techlist"
)

// PendingIndex is the index of accepted, not yet stored ids beside the
// pending marks; *redis.PendingIndex is one.
type PendingIndex interface {
	Forget(ctx context.Context, ids ...string) error
}

// Invalidator drops what this process holds that a stored tech makes
// stale. The live hub tells it of each tech.created event the worker
// announces, and of each moment such events may have been missed.
type Invalidator struct {
	reader  *Reader
	pending PendingIndex
	logger  *slog.Logger
}

// NewInvalidator returns the invalidator of reader's in-process memory
// (its list tier and its memory of unknown ids) and of the pending index.
func NewInvalidator(reader *Reader, pending PendingIndex, logger *slog.Logger) *Invalidator {
	return &Invalidator{reader: reader, pending: pending, logger: logger}
}

// TechStored drops the in-process list tier (the new tech heads the list),
// forgets the tech's id as unknown, and drops it from the pending index
// (the worker has cleared its mark already). An index that cannot be
// updated now is corrected when it is next counted.
func (v *Invalidator) TechStored(ctx context.Context, ev techlist.Event) {
	v.dropLocal()
	v.reader.Forget(ev.Tech.ID)
	if err := v.pending.Forget(ctx, ev.Tech.ID); err != nil {
		v.logger.Debug("live events: forget pending id", "err", err)
	}
}

// EventsMissed drops the in-process list tier: a tech may have been stored
// unannounced. (The tier's TTL bounds staleness in between.)
func (v *Invalidator) EventsMissed() { v.dropLocal() }

func (v *Invalidator) dropLocal() {
	if v.reader.local != nil {
		v.reader.local.Invalidate()
	}
}
