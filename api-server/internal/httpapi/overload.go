package httpapi

import (
	"log/slog"
	"net/http"

	"github.com/techlist/techlist"
)

// shedLoad returns the middleware that answers 503 with Retry-After: 1,
// at once, to a request arriving while maxInFlight others are still being
// served; zero turns it off. Past what the machine can serve, requests
// otherwise queue on the Redis and MySQL pools until every one of them is
// late, and each waiting one holds its connection's buffers and
// goroutine: open-loop load at twice the capacity took the api-server to
// 257 MB with 5,000 connections open. A quick 503 keeps the answered
// requests fast, the connections few and the memory bounded; MAX_CONNS
// bounds the connections themselves.
func shedLoad(maxInFlight int, logger *slog.Logger) func(http.Handler) http.Handler {
	if maxInFlight <= 0 {
		return func(next http.Handler) http.Handler { return next }
	}
	slots := make(chan struct{}, maxInFlight)
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case slots <- struct{}{}:
				defer func() { <-slots }()
				next.ServeHTTP(w, r)
			default:
				w.Header().Set("Retry-After", "1")
				writeError(w, r, logger, techlist.Unavailable(nil, "the server is overloaded; try again in a second"))
			}
		})
	}
}
