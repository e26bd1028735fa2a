package service

import (
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/techlist/techlist"
	"github.com/techlist/techlist/tracing"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// RequestIDs returns middleware that gives each request an id: the
// caller's X-Request-Id when techlist.ValidRequestID accepts it (so the
// client-app's id travels on to the api-server), else a new one. The id is
// answered in X-Request-Id and carried in the request's context
// (techlist.RequestID), so calls made for the request pass it on, the
// api-server puts it in the envelope for the worker's log, and the request
// log line names it. A new id is prefix, a random part per process and a
// counter: unique, and cheap enough for every request.
func RequestIDs(prefix string) func(http.Handler) http.Handler {
	b := make([]byte, 6)
	rand.Read(b)
	prefix += hex.EncodeToString(b) + "-"
	var n atomic.Uint64
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			id := r.Header.Get("X-Request-Id")
			if !techlist.ValidRequestID(id) {
				id = prefix + strconv.FormatUint(n.Add(1), 10)
			}
			w.Header().Set("X-Request-Id", id)
			next.ServeHTTP(w, r.WithContext(techlist.WithRequestID(r.Context(), id)))
		})
	}
}

// Served is what the request log line says of a request once served.
type Served struct {
	// Route is the router's pattern that matched, or "unmatched"; never
	// the path a client sent.
	Route   string
	Status  int
	Bytes   int64
	Elapsed time.Duration
}

// LogRequest writes the one log line of a served request r, "request",
// with the same fields in every service: method, path, route, status,
// bytes, duration_ms and request_id (from the context RequestIDs set).
// A line inside a traced request carries trace_id and span_id, and the
// request's server span is named "METHOD route" with http.route set.
func LogRequest(logger *slog.Logger, level slog.Level, r *http.Request, s Served) {
	ctx := r.Context()
	if tracing.CompiledIn {
		nameSpan(r, s.Route)
	}
	if !logger.Enabled(ctx, level) {
		return
	}
	// A record of its own, with no caller's pc: Logger.LogAttrs walks the
	// stack for one on every line (a sixth of the line's cost), and the
	// request line's source is always this function.
	rec := slog.NewRecord(time.Now(), level, "request", 0)
	rec.AddAttrs(
		slog.String("method", r.Method),
		slog.String("path", r.URL.Path),
		slog.String("route", s.Route),
		slog.Int("status", s.Status),
		slog.Int64("bytes", s.Bytes),
		slog.Float64("duration_ms", float64(s.Elapsed.Microseconds())/1000),
		slog.String("request_id", techlist.RequestID(ctx)),
	)
	logger.Handler().Handle(ctx, rec) // a handler's write error has nowhere to go, as with LogAttrs
}

// nameSpan names the request's server span "METHOD route" and sets
// http.route: the span was named before routing.
func nameSpan(r *http.Request, route string) {
	span := trace.SpanFromContext(r.Context())
	if !span.IsRecording() {
		return
	}
	name := route
	if !strings.HasPrefix(name, r.Method+" ") { // a ServeMux pattern names its method
		name = r.Method + " " + name
	}
	span.SetName(name)
	span.SetAttributes(attribute.String("http.route", route))
}
