package httpapi

import (
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/techlist/techlist"
	"github.com/techlist/techlist/service"
)

// logRequests logs one line per request (service.LogRequest) and records
// its metrics.
func logRequests(logger *slog.Logger, m *Metrics) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
			next.ServeHTTP(ww, r)
			status := ww.Status()
			if status == 0 {
				status = http.StatusOK
			}
			// The router's own patterns only, never the path a client sent;
			// a subrouter's catch-all ("/api/v1/techs/*") matched nothing.
			route := chi.RouteContext(r.Context()).RoutePattern()
			if route == "" || strings.HasSuffix(route, "/*") {
				route = "unmatched"
			}
			elapsed := time.Since(start)
			m.request(methodLabel(r.Method), route, status, elapsed)
			level := slog.LevelInfo
			if route == "/healthz" || route == "/readyz" || route == "/metrics" {
				level = slog.LevelDebug
			}
			service.LogRequest(logger, level, r, service.Served{
				Route: route, Status: status, Bytes: int64(ww.BytesWritten()), Elapsed: elapsed,
			})
		})
	}
}

// recoverPanics turns a panic in a handler into a logged 500, never a crash.
func recoverPanics(logger *slog.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			defer func() {
				if v := recover(); v != nil {
					if v == http.ErrAbortHandler {
						panic(v)
					}
					logger.ErrorContext(r.Context(), "panic", "value", v, "stack", string(debug.Stack()))
					writeError(w, r, logger, &techlist.Error{Code: techlist.EInternal, Message: "internal error"})
				}
			}()
			next.ServeHTTP(w, r)
		})
	}
}

// methodLabel is the method as a metrics label: one of the standard
// methods, else "OTHER", so junk methods cannot mint new series.
func methodLabel(method string) string {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return method
	}
	return "OTHER"
}
