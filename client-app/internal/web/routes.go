package web

import (
	"context"
	"io/fs"
	"log/slog"
	"net/http"
)

// addRoutes registers every route of the client-app. The event streams end
// when streams does.
func addRoutes(streams context.Context, mux *http.ServeMux, logger *slog.Logger, api API, p *pages, static fs.FS, cfg Config) {
	mux.Handle("GET /{$}", handleIndex(logger, api, p, cfg))
	mux.Handle("/{$}", handleMethodNotAllowed(p, "GET, HEAD"))

	mux.Handle("POST /techs", handleCreateTech(logger, api, p, cfg))
	mux.Handle("GET /techs", http.RedirectHandler("/", http.StatusSeeOther))
	mux.Handle("/techs", handleMethodNotAllowed(p, "GET, HEAD, POST"))

	mux.Handle("GET /about", handleAbout(logger, api, p))
	mux.Handle("/about", handleMethodNotAllowed(p, "GET, HEAD"))

	mux.Handle("GET /events", handleEvents(streams, logger, api, cfg))
	mux.Handle("/events", handleMethodNotAllowed(p, "GET, HEAD"))

	mux.Handle("GET /healthz", handleHealthz())
	mux.Handle("GET /readyz", handleReadyz(logger, api))

	mux.Handle("GET /static/", handleStatic(p, static))

	mux.Handle("/", handleNotFound(p))
}
