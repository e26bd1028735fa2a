package httpapi

import (
	"log/slog"
	"math"
	"net"
	"net/http"
	"strconv"

	"github.com/techlist/techlist"

	"github.com/techlist/api-server/internal/ratelimit"
)

// rateLimitedClients bounds the client IPs the limiter tracks at once
// (a few hundred bytes each); past it the one seen longest ago is
// forgotten.
const rateLimitedClients = 10_000

// limitRate returns the middleware that answers 429, with Retry-After, to
// a client IP past cfg.RateLimit; one limiter is shared by every route it
// wraps. With no limit set it passes every request on.
//
// The client is the connection's address: X-Forwarded-For is not trusted,
// since any client can send one. Behind a proxy, every client shares the
// proxy's budget.
func limitRate(cfg Config, logger *slog.Logger) func(http.Handler) http.Handler {
	if cfg.RateLimit <= 0 {
		return func(next http.Handler) http.Handler { return next }
	}
	burst := cfg.RateBurst
	if burst <= 0 {
		burst = max(1, int(2*cfg.RateLimit))
	}
	limiter := ratelimit.New(cfg.RateLimit, burst, rateLimitedClients)
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ok, wait := limiter.Allow(clientIP(r))
			if !ok {
				secs := max(1, int(math.Ceil(wait.Seconds())))
				w.Header().Set("Retry-After", strconv.Itoa(secs))
				writeError(w, r, logger, techlist.Errorf(techlist.ERateLimited,
					"too many submissions from your address; try again in %ds", secs))
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// clientIP is the IP of the connection's far end.
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
