package service

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"
)

// Watch runs a check of the deployment (not of one dependency), such as
// whether the workers run the queue mode of this process, and logs an
// error when a problem appears and once more when it is gone, not at
// every run (nor when only its numbers change). Its Ping is a readiness Check's.
type Watch struct {
	name   string
	check  func(context.Context) (problem string, err error)
	logger *slog.Logger

	mu      sync.Mutex
	problem string // the last one seen, "" while none
}

// NewWatch returns a watch named name of check, which returns a
// description of the problem it found, "" for none, or the error that kept
// it from looking (logged at debug level: the dependency's own check
// reports an outage).
func NewWatch(name string, check func(context.Context) (string, error), logger *slog.Logger) *Watch {
	return &Watch{name: name, check: check, logger: logger}
}

// Ping runs the check and returns the problem as an error, or
// errCannotLook when something kept it from looking: that error's text,
// with a driver's addresses, goes to the log only, since a check may be
// shown in /readyz (Check.Explain).
func (w *Watch) Ping(ctx context.Context) error {
	problem, err := w.check(ctx)
	if err != nil {
		w.logger.DebugContext(ctx, "check failed", "check", w.name, "err", err)
		return errCannotLook
	}
	w.mu.Lock()
	last := w.problem
	w.problem = problem
	w.mu.Unlock()
	switch {
	case problem != "" && last == "":
		w.logger.ErrorContext(ctx, problem, "check", w.name)
	case problem == "" && last != "":
		w.logger.InfoContext(ctx, "resolved: "+last, "check", w.name)
	}
	if problem != "" {
		return errors.New(problem)
	}
	return nil
}

// Run pings every period until ctx ends, so the log tells of a problem
// even when nobody asks for readiness.
func (w *Watch) Run(ctx context.Context, period time.Duration) {
	tick := time.NewTicker(period)
	defer tick.Stop()
	for {
		pctx, cancel := context.WithTimeout(ctx, min(period, 2*time.Second))
		w.Ping(pctx)
		cancel()
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// Start runs Run in a goroutine and returns the function that stops it
// and waits until it has.
func (w *Watch) Start(ctx context.Context, period time.Duration) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.Run(ctx, period)
	}()
	return func() {
		cancel()
		<-done
	}
}

var errCannotLook = errors.New("cannot tell now: a dependency did not answer (the log says which)")
