// Package web serves the client-app's HTML pages: the Tech Summary page, its
// add form, health checks and the embedded static files. It reaches the
// api-server only through the API interface.
package web

import (
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"

	"github.com/techlist/client-app/internal/apiclient"
)

// API is what the pages need of the api-server; *apiclient.Client has it.
type API interface {
	ListTechs(ctx context.Context, limit int, cursor string) (apiclient.ListResult, error)
	CreateTech(ctx context.Context, text string) (id string, err error)
	Health(ctx context.Context) error
}

// NewServer returns the client-app's handler: every route, behind CSRF
// protection, security headers and a request log. pageSize is how many
// techs one page lists. It fails when the embedded templates do not parse.
func NewServer(logger *slog.Logger, api API, pageSize int) (http.Handler, error) {
	if pageSize < 1 {
		return nil, fmt.Errorf("web: page size %d, want at least 1", pageSize)
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
	addRoutes(mux, logger, api, p, static, pageSize)

	csrf := http.NewCrossOriginProtection()
	csrf.SetDenyHandler(handleForbidden(p))

	var h http.Handler = mux
	h = csrf.Handler(h)
	h = securityHeaders(h)
	h = logRequests(logger, p, h)
	return h, nil
}
