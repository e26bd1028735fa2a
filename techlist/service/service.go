// Package service holds what every service's run does alike: serving HTTP
// until the context ends and shutting down gracefully, retrying a
// dependency at start, and the -healthcheck probe the container images use.
package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/techlist/techlist/retry"
)

// MaxHeaderBytes bounds a request's header (request line included): past
// it net/http answers 431 itself. Go's default of 1 MiB let each
// connection hold megabytes of heap while its header was parsed (250
// connections sending 1 MB headers took the api-server to 717 MB). 64 KiB
// is what an AWS Application Load Balancer admits for a whole header and
// four times Node.js's 16 KiB default (the seed ran on Node), far above
// what a browser sends here (the client-app's cookie is at most 4 KiB) and
// a sixteenth of the default. net/http allows 4 KiB over it.
const MaxHeaderBytes = 64 << 10

// NewHTTPServer returns an http.Server with the timeouts and header bound
// every service uses: each service's public port and the admin listener
// are built here.
func NewHTTPServer(addr string, h http.Handler, logger *slog.Logger) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           h,
		MaxHeaderBytes:    MaxHeaderBytes,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       90 * time.Second,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
}

// Listen opens the server's port. Services listen before they start any
// other work, so a port already taken fails the start at once.
func Listen(srv *http.Server) (net.Listener, error) {
	ln, err := net.Listen("tcp", srv.Addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", srv.Addr, err)
	}
	return ln, nil
}

// Serve serves on ln until ctx ends, then shuts down, giving in-flight
// requests up to timeout to finish. It returns nil after a clean shutdown,
// which it logs as "stopped" (every service's last line but its closes).
func Serve(ctx context.Context, srv *http.Server, ln net.Listener, logger *slog.Logger, timeout time.Duration) error {
	logger.Info("listening", "addr", ln.Addr().String())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	logger.Info("shutting down HTTP server", "timeout", timeout)
	// A fresh context: the one passed in is already done.
	shutdownCtx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	logger.Info("stopped")
	return nil
}

// Retry calls fn until it succeeds, ctx ends or limit has passed, waiting a
// little longer after each failure. It is for dependencies that may still be
// starting, as they are when a whole stack comes up at once.
func Retry(ctx context.Context, logger *slog.Logger, what string, limit time.Duration, fn func(context.Context) error) error {
	deadline := time.Now().Add(limit)
	backoff := retry.Backoff{Min: 200 * time.Millisecond, Max: 5 * time.Second}
	for {
		err := fn(ctx)
		if err == nil {
			return nil
		}
		wait := backoff.Next()
		if time.Now().Add(wait).After(deadline) {
			return fmt.Errorf("%s: gave up after %s: %w", what, limit, err)
		}
		logger.Warn("not ready yet, retrying", "what", what, "err", err, "in", wait)
		if !retry.Sleep(ctx, wait) {
			return fmt.Errorf("%s: %w", what, ctx.Err())
		}
	}
}

// HealthCheck GETs http://127.0.0.1:port/healthz and returns an error unless
// it answers 200. Container images have no shell or curl, so each binary
// probes itself with -healthcheck.
func HealthCheck(port int) error {
	c := http.Client{Timeout: 3 * time.Second}
	resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d/healthz", port))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthz answered %s", resp.Status)
	}
	return nil
}
