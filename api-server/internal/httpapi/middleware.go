package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/techlist/techlist"
)

// requestID gives each request an id: the caller's X-Request-Id when it is
// a sane one (so the client-app's id travels on), else a new random one.
// It is kept where chi's middleware.GetReqID finds it, and goes into the
// envelope so the worker logs it too.
func requestID(next http.Handler) http.Handler {
	// A random prefix per process and a counter: unique, and cheap enough
	// for every request (chi's middleware.RequestID does the same).
	b := make([]byte, 6)
	rand.Read(b)
	prefix := hex.EncodeToString(b) + "-"
	var n atomic.Uint64
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Request-Id")
		if !techlist.ValidRequestID(id) {
			id = prefix + strconv.FormatUint(n.Add(1), 10)
		}
		ctx := context.WithValue(r.Context(), middleware.RequestIDKey, id)
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// logRequests logs one line per request and records its metrics. The
// request id (X-Request-Id, or a new one) is echoed in the response.
func logRequests(logger *slog.Logger, m *Metrics) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			reqID := middleware.GetReqID(r.Context())
			w.Header().Set("X-Request-Id", reqID)
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
			m.request(methodLabel(r.Method), route, strconv.Itoa(status), elapsed)
			level := slog.LevelInfo
			if route == "/healthz" || route == "/readyz" || route == "/metrics" {
				level = slog.LevelDebug
			}
			logger.Log(r.Context(), level, "request",
				"method", r.Method, "path", r.URL.Path, "route", route, "status", status,
				"bytes", ww.BytesWritten(), "duration_ms", float64(elapsed.Microseconds())/1000,
				"request_id", reqID)
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
