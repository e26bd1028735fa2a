// Package web serves the client-app's HTML pages: the Tech Summary page, its
// add form, the architecture page, the live event stream the pages' script
// listens to, health checks and the embedded static files. It reaches the
// api-server only through the API interface.
package web

import (
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"time"

	"github.com/techlist/client-app/internal/apiclient"
	"github.com/techlist/techlist/service"
)

// API is what the pages need of the api-server; *apiclient.Client has it.
type API interface {
	ListTechs(ctx context.Context, limit int, cursor string) (apiclient.ListResult, error)
	CreateTech(ctx context.Context, text, idempotencyKey string) (id string, err error)
	Tech(ctx context.Context, id string) (apiclient.TechState, error)
	Stats(ctx context.Context) (apiclient.Stats, error)
	Events(ctx context.Context) (*apiclient.EventStream, error)
	Health(ctx context.Context) error
}

// Config holds the pages' settings.
type Config struct {
	// PageSize is how many techs one page lists; at least 1.
	PageSize int
	// QueuedTimeout is how long a submitted tech may stay unstored before
	// the page says so; default 30s.
	QueuedTimeout time.Duration
	// StatsInterval is how often an open page's numbers are refreshed
	// through the event stream; default 5s.
	StatsInterval time.Duration
	// Heartbeat is how often an idle event stream gets a comment line;
	// default 15s.
	Heartbeat time.Duration
	// SubmitWait is how long a submission waits for an earlier send of
	// the same form that is still in flight (a double click); default 10s.
	SubmitWait time.Duration
	// MaxStreams bounds the open GET /events streams; past it a new one
	// gets 503. Default 1000.
	MaxStreams int
	// Now is the clock; default time.Now.
	Now func() time.Time
}

func (c *Config) defaults() error {
	if c.PageSize < 1 {
		return fmt.Errorf("web: page size %d, want at least 1", c.PageSize)
	}
	if c.QueuedTimeout <= 0 {
		c.QueuedTimeout = 30 * time.Second
	}
	if c.StatsInterval <= 0 {
		c.StatsInterval = 5 * time.Second
	}
	if c.SubmitWait <= 0 {
		c.SubmitWait = 10 * time.Second
	}
	if c.Heartbeat <= 0 {
		c.Heartbeat = 15 * time.Second
	}
	if c.MaxStreams <= 0 {
		c.MaxStreams = 1000
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return nil
}

// Server is the client-app's handler.
type Server struct {
	handler    http.Handler
	endStreams context.CancelFunc
}

// ServeHTTP serves every route.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// CloseStreams ends every open event stream, and those opened after at
// once: the server is shutting down, and http.Server.Shutdown would
// otherwise wait for them until its timeout. Register it with
// http.Server.RegisterOnShutdown.
func (s *Server) CloseStreams() { s.endStreams() }

// NewServer returns the client-app's handler. It fails when the
// configuration is wrong or the embedded templates do not parse.
func NewServer(logger *slog.Logger, api API, cfg Config) (*Server, error) {
	// The event streams' lifetime: until CloseStreams.
	streams, endStreams := context.WithCancel(context.Background())
	h, err := newHandler(streams, logger, api, cfg)
	if err != nil {
		endStreams()
		return nil, err
	}
	return &Server{handler: h, endStreams: endStreams}, nil
}

// newHandler returns every route, behind CSRF protection, security headers
// and a request log; the event streams end when streams does.
func newHandler(streams context.Context, logger *slog.Logger, api API, cfg Config) (http.Handler, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	static, err := fs.Sub(staticFS, "static")
	if err != nil {
		return nil, fmt.Errorf("web: %w", err)
	}
	p, err := parsePages(logger, static)
	if err != nil {
		return nil, fmt.Errorf("web: %w", err)
	}
	mux := http.NewServeMux()
	addRoutes(streams, mux, logger, api, p, static, cfg)

	csrf := http.NewCrossOriginProtection()
	csrf.SetDenyHandler(handleForbidden(p))

	var h http.Handler = mux
	h = csrf.Handler(h)
	h = securityHeaders(h)
	h = logRequests(logger, p, h)
	// Each request gets an id (the caller's X-Request-Id when it is a sane
	// one): it is logged, answered in X-Request-Id, and sent on to the
	// api-server, which puts it in the envelope for the worker's log.
	h = service.RequestIDs("client-")(h)
	return h, nil
}
