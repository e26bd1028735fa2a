package config

import (
	"io"
	"log/slog"
	"os"
)

// NewLogger builds the logger from LOG_LEVEL (debug, info, warn, error) and
// LOG_FORMAT (text or json; by default text when w is a terminal, else json).
// A line logged with a context holding a span carries trace_id and span_id.
func NewLogger(env *Env, w io.Writer) *slog.Logger {
	var level slog.Level
	switch env.Enum("LOG_LEVEL", "info", "debug", "info", "warn", "error") {
	case "debug":
		level = slog.LevelDebug
	case "warn":
		level = slog.LevelWarn
	case "error":
		level = slog.LevelError
	default:
		level = slog.LevelInfo
	}
	format := "json"
	if IsTerminal(w) {
		format = "text"
	}
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewJSONHandler(w, opts)
	if env.Enum("LOG_FORMAT", format, "text", "json") == "text" {
		h = slog.NewTextHandler(w, opts)
	}
	if traceLogs {
		h = traceHandler{h}
	}
	return slog.New(h)
}

// IsTerminal reports whether w is a character device such as a terminal.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	info, err := f.Stat()
	return err == nil && info.Mode()&os.ModeCharDevice != 0
}
