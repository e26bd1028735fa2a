package redis

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	goredis "github.com/redis/go-redis/v9"
)

// SetDriverLogger routes go-redis's own log lines ("specified duration is
// 1ns … truncating to 1ms", pool and cluster warnings), which it otherwise
// prints to standard error as plain text, into logger at warn level, so a
// service with LOG_FORMAT=json writes only JSON. Each service's run calls
// it once, with its logger, before it makes a client.
//
// It is package-level because go-redis's logging is: redis.SetLogger sets
// one logger for the whole process (no client has an option for it). The
// library stores it atomically, so calling it again is safe; the last call
// wins.
func SetDriverLogger(logger *slog.Logger) { goredis.SetLogger(driverLog{logger}) }

// driverLog is go-redis's internal.Logging interface over slog.
type driverLog struct{ logger *slog.Logger }

func (d driverLog) Printf(ctx context.Context, format string, v ...any) {
	if ctx == nil {
		ctx = context.Background()
	}
	d.logger.WarnContext(ctx, strings.TrimSpace(fmt.Sprintf(format, v...)), "driver", "go-redis")
}
