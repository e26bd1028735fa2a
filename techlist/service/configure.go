package service

import (
	"context"
	"io"
	"log/slog"

	"github.com/techlist/techlist/config"
	"github.com/techlist/techlist/tracing"
)

// Configure reads a service's environment through getenv: its own
// settings (read), the logger (LOG_LEVEL, LOG_FORMAT, writing to stdout)
// and tracing (OTEL_*, named name). A bad value of any of them is one
// error naming the variable, before anything starts.
func Configure[S any](ctx context.Context, name string, getenv func(string) string, stdout io.Writer, read func(*config.Env) S) (S, *slog.Logger, *tracing.Tracing, error) {
	env := config.NewEnv(getenv)
	settings := read(env)
	logger := config.NewLogger(env, stdout)
	tr, err := tracing.Setup(ctx, env, name)
	if err == nil {
		err = env.Err()
	}
	if err != nil {
		var none S
		return none, nil, nil, err
	}
	if tr.Enabled {
		tracing.LogTo(logger)
	}
	return settings, logger, tr, nil
}
