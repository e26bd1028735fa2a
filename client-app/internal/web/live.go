package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/techlist/client-app/internal/apiclient"
	"github.com/techlist/techlist"
	"github.com/techlist/techlist/service"
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
//
// Every page's stream shares one upstream connection and one read of the
// numbers per interval (see relay). Past cfg.MaxStreams open streams a new
// one gets 503. Every stream ends when streams does (the server is
// shutting down).
func handleEvents(streams context.Context, logger *slog.Logger, api API, cfg Config) http.Handler {
	shared := newRelay(api, logger, cfg)
	slots := service.NewSlots(cfg.MaxStreams)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !slots.Take() {
			w.Header().Set("Retry-After", strconv.Itoa(int(eventsRetry.Seconds())))
			http.Error(w, "Too many live streams are open; try again shortly.", http.StatusServiceUnavailable)
			return
		}
		defer slots.Give()
		after, catchUp, queued := eventsQuery(r)

		// The stream ends when the browser goes or the server shuts down.
		ctx, cancel := context.WithCancel(r.Context())
		defer cancel()
		defer context.AfterFunc(streams, cancel)()

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

		l, leave, err := shared.join(ctx, streams)
		if err != nil { // the relay logged it
			if v, ok := shared.readStats(ctx, cfg.StatsInterval); ok {
				_ = out.send("stats", "", v)
			}
			_ = out.send("status", "", liveStatus{Message: liveAPIDown})
			return // the browser reconnects after eventsRetry
		}
		defer leave()
		if out.send("status", "", liveStatus{Live: true, Message: liveOn}) != nil {
			return
		}
		// Events stored meanwhile wait in the listener's buffer.
		if catchUp || len(queued) > 0 {
			if catchUpEvents(ctx, logger, api, cfg, out, catchUp, after, queued) != nil {
				return
			}
		}
		relayTo(ctx, out, l, cfg.Heartbeat)
	})
}

// eventsQuery reads /events' query: ?after= and the well-formed ?queued=
// ids, at most maxQueued of them.
func eventsQuery(r *http.Request) (after string, catchUp bool, queued []string) {
	q := r.URL.Query()
	after, catchUp = q.Get("after"), q.Has("after")
	if after != "" && !techlist.ValidID(after) {
		catchUp = false
	}
	for _, id := range q["queued"] {
		if techlist.ValidID(id) && len(queued) < maxQueued {
			queued = append(queued, id)
		}
	}
	return after, catchUp, queued
}

// relayTo writes what the relay hands l to the page until the page goes,
// the server stops or the upstream ends.
func relayTo(ctx context.Context, out *sseWriter, l *listener, heartbeat time.Duration) {
	beat := time.NewTicker(heartbeat)
	defer beat.Stop()
	relaying := true // as far as anyone knows
	for {
		var err error
		select {
		case <-ctx.Done():
			return
		case ev := <-l.events:
			err = out.send("tech", ev.Tech.ID, storedView(ev.Tech))
		case v := <-l.stats:
			err = out.send("stats", "", v)
			if err == nil && v.Available && v.Relaying != relaying {
				relaying = v.Relaying
				st := liveStatus{Live: true, Message: liveOn}
				if !relaying {
					st = liveStatus{Message: liveNoEvents}
				}
				err = out.send("status", "", st)
			}
		case <-beat.C:
			err = out.raw(": heartbeat\n\n")
		case <-l.ended:
			if ctx.Err() == nil {
				drainEvents(out, l)
				_ = out.send("status", "", liveStatus{Message: liveInterrupted})
			}
			return // the browser reconnects
		}
		if err != nil {
			return // the browser went away
		}
	}
}

// drainEvents sends the events l still holds.
func drainEvents(out *sseWriter, l *listener) {
	for {
		select {
		case ev := <-l.events:
			if out.send("tech", ev.Tech.ID, storedView(ev.Tech)) != nil {
				return
			}
		default:
			return
		}
	}
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
