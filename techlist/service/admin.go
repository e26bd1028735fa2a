package service

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"strconv"
	"time"

	"github.com/techlist/techlist/config"
)

// AdminAddr reads ADMIN_ADDR: empty (the default) turns the admin listener
// off; otherwise a host:port such as 127.0.0.1:6060.
func AdminAddr(env *config.Env) string {
	addr := env.String("ADMIN_ADDR", "")
	if addr == "" {
		return ""
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		env.Fail("ADMIN_ADDR", addr, "want host:port such as 127.0.0.1:6060, or empty for none")
	}
	return addr
}

// AdminHandler serves net/http/pprof, and nothing else.
func AdminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	return mux
}

// Admin is the admin listener: pprof on an address of its own.
type Admin struct {
	addr   string
	cancel context.CancelFunc
	done   chan error
}

// ServeAdmin serves AdminHandler on addr, a listener of its own that is
// never the public port, until ctx ends or Close. With addr empty it does
// nothing. It returns once listening, so a taken port fails the start.
func ServeAdmin(ctx context.Context, addr string, logger *slog.Logger) (*Admin, error) {
	ctx, cancel := context.WithCancel(ctx)
	a := &Admin{cancel: cancel, done: make(chan error, 1)}
	if addr == "" {
		a.done <- nil
		return a, nil
	}
	srv := NewHTTPServer(addr, AdminHandler(), logger)
	// A CPU profile or trace streams for as long as ?seconds= asks.
	srv.WriteTimeout = 0
	ln, err := Listen(srv)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("admin listener (ADMIN_ADDR): %w", err)
	}
	a.addr = ln.Addr().String()
	if ip := ln.Addr().(*net.TCPAddr).IP; !ip.IsLoopback() {
		logger.Warn("the admin listener (pprof) is reachable beyond this host; bind it to 127.0.0.1 unless that is intended", "addr", a.addr)
	}
	go func() { a.done <- Serve(ctx, srv, ln, logger.With("listener", "admin"), 5*time.Second) }()
	return a, nil
}

// Addr returns the address listened on, or "" when the listener is off.
func (a *Admin) Addr() string { return a.addr }

// Close shuts the listener down and returns once it has.
func (a *Admin) Close() error {
	a.cancel()
	return <-a.done
}

// ListenAndServe opens srv's port, serving at most maxConns connections
// at once (see MaxConns), starts the admin listener on adminAddr (none
// when empty), and serves until ctx ends, shutting down within timeout:
// the whole life of a service whose only work is its HTTP server.
func ListenAndServe(ctx context.Context, srv *http.Server, adminAddr string, maxConns int, logger *slog.Logger, timeout time.Duration) error {
	ln, err := Listen(srv)
	if err != nil {
		return err
	}
	if maxConns > 0 {
		ln = limitConns(ln, maxConns, srv)
	}
	admin, err := ServeAdmin(ctx, adminAddr, logger)
	if err != nil {
		ln.Close()
		return err
	}
	defer admin.Close()
	return Serve(ctx, srv, ln, logger, timeout)
}

// MaxConns reads MAX_CONNS, the most connections a public port serves at
// once: 0 (the default) for no bound but the process's file limit. Each
// served connection holds buffers and a goroutine, about 30 KB while a
// request runs, so a bound caps the memory a flood of clients takes; past
// it, idle keep-alive connections are closed and new ones wait in the
// kernel's accept queue. It is off by default because a red team showed
// its costs: with more clients than slots, closing idle connections races
// with clients reusing them (non-idempotent requests fail on the client
// with "server closed idle connection"), and connections that send
// nothing hold a slot until ReadHeaderTimeout, so a few hundred of them
// lock everyone out. Per-client connection limits belong in front of the
// service (a proxy); set this as the last line of defence. It counts the
// live-event streams too, so keep it above EVENTS_MAX_CLIENTS.
func MaxConns(env *config.Env) int {
	return env.Int("MAX_CONNS", 0, 0, 1_000_000)
}

// StreamsFit fails EVENTS_MAX_CLIENTS unless it is below maxConns (when
// bounded): every live-event stream holds one of MAX_CONNS's connections
// for as long as it is open, and requests need the rest.
func StreamsFit(env *config.Env, streams, maxConns int) {
	if maxConns > 0 && streams >= maxConns {
		env.Fail("EVENTS_MAX_CLIENTS", strconv.Itoa(streams), "want fewer than MAX_CONNS ("+strconv.Itoa(maxConns)+"): each event stream holds one of its connections")
	}
}
