package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/techlist/client-app/internal/apiclient"
	"github.com/techlist/techlist"
)

const (
	// eventsRetry is the reconnection delay the stream asks browsers for.
	eventsRetry = 3 * time.Second
	// eventsWriteTimeout bounds each write to a browser's stream.
	eventsWriteTimeout = 10 * time.Second
	// statsSoon is how long after a stored tech the numbers are read again,
	// so a burst of techs costs one read.
	statsSoon = 300 * time.Millisecond
)

// Status messages of the live updates, as the page shows them.
const (
	liveOn          = "On: new techs appear as they are stored."
	liveAPIDown     = "Paused: the API server is unreachable. Retrying every few seconds; refresh to see the list."
	liveInterrupted = "Interrupted: reconnecting…"
	liveNoEvents    = "Paused: the API server is not receiving the worker's events (is Redis up?). Refresh to see new techs."
)

// liveStatus is the data of a "status" event.
type liveStatus struct {
	Live    bool   `json:"live"`
	Message string `json:"message"`
}

// lostTech is the data of a "lost" event.
type lostTech struct {
	ID string `json:"id"`
}

// handleEvents serves GET /events, the Server-Sent Events stream the
// pages' script listens to, relaying the api-server's stream through this
// origin. Its events:
//
//	event: tech    id: <tech id>   data: a stored tech (techView)
//	event: lost    data: {"id"}    a queued tech the api-server no longer knows
//	event: stats   data: the status strip's numbers (statsView), every few seconds
//	event: status  data: {"live", "message"}: whether live updates work
//
// With ?after=<id> (empty for none) it first sends the techs of the first
// page stored after that id, and with ?queued=<id>... the fate of each of
// those, so that nothing stored while the page loaded is missed.
func handleEvents(logger *slog.Logger, api API, cfg Config) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		after, catchUp := q.Get("after"), q.Has("after")
		if after != "" && !techlist.ValidID(after) {
			catchUp = false
		}
		var queued []string
		for _, id := range q["queued"] {
			if techlist.ValidID(id) && len(queued) < maxQueued {
				queued = append(queued, id)
			}
		}

		// The stream ends when the browser goes or the server shuts down.
		ctx, cancel := context.WithCancel(r.Context())
		defer cancel()
		defer context.AfterFunc(cfg.Streams, cancel)()

		rc := http.NewResponseController(w)
		h := w.Header()
		h.Set("Content-Type", "text/event-stream; charset=utf-8")
		h.Set("Cache-Control", "no-cache, no-transform")
		h.Set("X-Accel-Buffering", "no")
		w.WriteHeader(http.StatusOK)
		out := &sseWriter{w: w, rc: rc}
		if out.raw(fmt.Sprintf("retry: %d\n\n", eventsRetry.Milliseconds())) != nil {
			return
		}

		upstream, err := api.Events(ctx)
		if err != nil {
			if ctx.Err() == nil {
				logger.WarnContext(ctx, "events: cannot open the api-server's stream", "err", err)
			}
			st, serr := api.Stats(ctx)
			_ = out.send("stats", "", newStatsView(st, serr))
			_ = out.send("status", "", liveStatus{Message: liveAPIDown})
			return // the browser reconnects after eventsRetry
		}
		defer upstream.Close()
		if out.send("status", "", liveStatus{Live: true, Message: liveOn}) != nil {
			return
		}

		// Read the api-server's stream on the side; closing it (deferred
		// above) ends this goroutine.
		events := make(chan techlist.Event)
		upErr := make(chan error, 1)
		go func() {
			for {
				ev, err := upstream.Next()
				if err != nil {
					upErr <- err
					return
				}
				select {
				case events <- ev:
				case <-ctx.Done():
					return
				}
			}
		}()

		if catchUp || len(queued) > 0 {
			if catchUpEvents(ctx, logger, api, cfg, out, catchUp, after, queued) != nil {
				return
			}
		}

		// The numbers: now, every StatsInterval, and soon after a store.
		// One read at a time, off this loop.
		stats := make(chan statsView, 1)
		fetching := false
		fetch := func() {
			if fetching {
				return
			}
			fetching = true
			go func() {
				st, err := api.Stats(ctx)
				select {
				case stats <- newStatsView(st, err):
				case <-ctx.Done():
				}
			}()
		}
		fetch()
		tick := time.NewTicker(cfg.StatsInterval)
		defer tick.Stop()
		beat := time.NewTicker(cfg.Heartbeat)
		defer beat.Stop()
		soon := time.NewTimer(statsSoon)
		soon.Stop()
		soonSet := false
		relaying := true // as far as anyone knows

		for {
			var err error
			select {
			case <-ctx.Done():
				return
			case ev := <-events:
				err = out.send("tech", ev.Tech.ID, storedView(ev.Tech))
				if !soonSet {
					soon.Reset(statsSoon)
					soonSet = true
				}
			case v := <-stats:
				fetching = false
				err = out.send("stats", "", v)
				if err == nil && v.Available && v.Relaying != relaying {
					relaying = v.Relaying
					st := liveStatus{Live: true, Message: liveOn}
					if !relaying {
						st = liveStatus{Message: liveNoEvents}
					}
					err = out.send("status", "", st)
				}
			case <-soon.C:
				soonSet = false
				fetch()
			case <-tick.C:
				fetch()
			case <-beat.C:
				err = out.raw(": heartbeat\n\n")
			case err := <-upErr:
				if ctx.Err() == nil {
					logger.WarnContext(ctx, "events: the api-server's stream ended", "err", err)
					_ = out.send("status", "", liveStatus{Message: liveInterrupted})
				}
				return // the browser reconnects
			}
			if err != nil {
				return // the browser went away
			}
		}
	})
}

// catchUpEvents sends what was stored since the page was read: the techs of
// the first page newer than after (when catchUp), oldest first, and what
// became of each queued id.
func catchUpEvents(ctx context.Context, logger *slog.Logger, api API, cfg Config, out *sseWriter, catchUp bool, after string, queued []string) error {
	sent := map[string]bool{}
	if catchUp {
		res, err := api.ListTechs(ctx, cfg.PageSize, "")
		if err != nil {
			logger.DebugContext(ctx, "events: catch up", "err", err)
		}
		for i := len(res.Page.Data) - 1; i >= 0; i-- {
			t := res.Page.Data[i]
			if after != "" && t.ID <= after {
				continue
			}
			if err := out.send("tech", t.ID, storedView(t)); err != nil {
				return err
			}
			sent[t.ID] = true
		}
	}
	for _, id := range queued {
		if sent[id] {
			continue
		}
		st, err := api.Tech(ctx, id)
		var apiErr *apiclient.APIError
		switch {
		case err == nil && !st.Pending:
			err = out.send("tech", id, storedView(st.Tech))
		case err == nil:
			continue // still queued: its event comes later
		case errors.As(err, &apiErr) && apiErr.Status == http.StatusNotFound:
			err = out.send("lost", "", lostTech{ID: id})
		default:
			logger.DebugContext(ctx, "events: catch up on a queued tech", "err", err)
			continue
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// sseWriter writes Server-Sent Events, flushing each.
type sseWriter struct {
	w  http.ResponseWriter
	rc *http.ResponseController
}

// send writes one event whose data is v as JSON. JSON has no raw line
// breaks, and encoding/json escapes <, > and &, so data never ends early
// and never reads as markup.
func (s *sseWriter) send(event, id string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	msg := "event: " + event + "\ndata: " + string(b) + "\n\n"
	if id != "" {
		msg = "id: " + id + "\n" + msg
	}
	return s.raw(msg)
}

// raw writes text as it is, then flushes.
func (s *sseWriter) raw(text string) error {
	// The server's WriteTimeout would cut the stream; each write gets its
	// own deadline instead.
	_ = s.rc.SetWriteDeadline(time.Now().Add(eventsWriteTimeout))
	if _, err := s.w.Write([]byte(text)); err != nil {
		return err
	}
	return s.rc.Flush()
}
