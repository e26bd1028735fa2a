package tracing

import (
	"log/slog"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"go.opentelemetry.io/otel"
)

// LogTo sends OpenTelemetry's own messages through logger, so that with
// LOG_FORMAT=json every line is JSON: its internal log (a bad endpoint
// URL, say) at the levels it uses, and its errors (a failed export) as
// warnings, at most one every 10 seconds with a count of those dropped,
// since a collector that is down fails every export.
func LogTo(logger *slog.Logger) {
	otel.SetLogger(logr.FromSlogHandler(logger.With("component", "opentelemetry").Handler()))
	otel.SetErrorHandler(&throttledErrors{logger: logger, every: 10 * time.Second})
}

type throttledErrors struct {
	logger  *slog.Logger
	every   time.Duration
	mu      sync.Mutex
	last    time.Time
	dropped int
}

func (h *throttledErrors) Handle(err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.last.IsZero() && time.Since(h.last) < h.every {
		h.dropped++
		return
	}
	h.logger.Warn("tracing failed", "component", "opentelemetry", "err", err, "dropped_since_last", h.dropped)
	h.last, h.dropped = time.Now(), 0
}
