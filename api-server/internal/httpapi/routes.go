package httpapi

import (
	"cmp"
	"net/http"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/cors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/techlist/techlist"
	"github.com/techlist/techlist/service"
)

// routes lists every route of the api-server in one place.
func routes(cfg Config, d Deps) http.Handler {
	r := chi.NewRouter()
	r.Use(service.RequestIDs(""))
	r.Use(logRequests(d.Logger, d.Metrics))
	r.Use(recoverPanics(d.Logger))
	r.Use(cors.Handler(cors.Options{
		AllowedOrigins: cfg.CORSOrigins,
		AllowedMethods: []string{http.MethodGet, http.MethodPost, http.MethodOptions},
		AllowedHeaders: []string{"Content-Type", "Idempotency-Key", "X-Request-Id"},
		ExposedHeaders: []string{"Location", "X-Cache", "X-Request-Id"},
		MaxAge:         600,
	}))
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, r, d.Logger, techlist.Errorf(techlist.ENotFound, "no route %s %s", clip(r.Method, 32), clip(r.URL.Path, 256)))
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, r, d.Logger, techlist.Errorf(techlist.EMethod, "method %s is not allowed on %s", clip(r.Method, 32), clip(r.URL.Path, 256)))
	})

	limit := limitRate(cfg, d.Logger) // the POSTs, per client IP
	shed := shedLoad(cfg.MaxInFlight, cfg.MaxBodyBytes, d.Logger)
	r.Route("/api/v1/techs", func(r chi.Router) {
		r.Use(shed)
		r.Get("/", handleListTechs(d.Logger, d.Reader))
		r.With(limit).Post("/", handleCreateTech(cfg, d))
		r.Get("/{id}", handleGetTech(d.Logger, d.Reader))
	})
	r.Get("/api/v1/events", handleEvents(d.Logger, d.Events,
		cmp.Or(cfg.EventsHeartbeat, eventsHeartbeat), cmp.Or(cfg.EventsMaxClients, eventsMaxClients)))
	r.Get("/api/v1/stats", handleStats(d.Logger, d.Stats))

	// The seed's routes, so a client written for it works unchanged.
	r.Get("/", handleSeedRoot())
	r.With(shed).Get("/get", handleSeedGet(d.Logger, d.Reader))
	r.With(shed, limit).Post("/create", handleSeedCreate(cfg, d))

	r.Get("/healthz", service.Healthz("api-server"))
	r.Get("/readyz", service.Readyz(d.Logger, d.Checks...))
	r.Method(http.MethodGet, "/metrics", promhttp.HandlerFor(d.Gatherer, promhttp.HandlerOpts{}))
	r.Get("/openapi.json", handleOpenAPI())
	return r
}
