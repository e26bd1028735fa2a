package web

import (
	"log/slog"
	"net/http"

	"github.com/techlist/client-app/internal/apiclient"
)

// aboutPage is the data of about.html.
type aboutPage struct {
	Title string
	Nav   string
	Stats statsView
	Live  liveView
}

// handleAbout serves the architecture page: the data-flow diagram and how
// a tech travels, beside the live numbers.
func handleAbout(logger *slog.Logger, api API, p *pages) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st, err := api.Stats(r.Context())
		if err != nil && !apiclient.IsUnreachable(err) {
			logger.WarnContext(r.Context(), "stats", "err", err)
		}
		p.render(w, r, http.StatusOK, "about.html", aboutPage{
			Title: "How it works · Tech Summary",
			Nav:   "about",
			Stats: newStatsView(st, err),
			Live:  liveView{EventsURL: "/events"},
		})
	})
}
