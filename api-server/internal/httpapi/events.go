package httpapi

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/techlist/techlist"
	"github.com/techlist/techlist/service"

	"github.com/techlist/api-server/internal/live"
	"github.com/techlist/api-server/internal/stats"
)

// Events relays the worker's events to streaming clients; *live.Hub is one.
type Events interface {
	// Join adds a client; the channel closes when the relay stops or the
	// client falls behind, and leave removes the client.
	Join() (msgs <-chan live.Message, leave func())
}

// Stats gathers the numbers of GET /api/v1/stats; *stats.Source is one.
type Stats interface {
	Stats(ctx context.Context) stats.Snapshot
}

const (
	// eventsHeartbeat is how often an idle stream gets a comment line, so
	// proxies and browsers see the connection alive.
	eventsHeartbeat = 15 * time.Second
	// eventsRetry is the reconnection delay the stream asks browsers for.
	eventsRetry = 2 * time.Second
	// eventsWriteTimeout bounds each write to a stream; a client that
	// takes longer is dropped.
	eventsWriteTimeout = 10 * time.Second
	// eventsMaxClients is the default bound on open streams.
	eventsMaxClients = 512
)

// handleEvents streams tech.created events as Server-Sent Events:
//
//	id: <tech id>
//	event: tech.created
//	data: {"type":"tech.created","tech":Tech}
//
// with a comment line every heartbeat while idle. The stream ends when the
// client goes away or the relay stops (the server is shutting down).
//
// Past maxClients open streams a new one is refused with 503.
func handleEvents(logger *slog.Logger, events Events, heartbeat time.Duration, maxClients int) http.HandlerFunc {
	slots := service.NewSlots(maxClients)
	return func(w http.ResponseWriter, r *http.Request) {
		if events == nil {
			writeError(w, r, logger, techlist.Errorf(techlist.EUnavailable, "live events are not available on this server"))
			return
		}
		if !slots.Take() {
			w.Header().Set("Retry-After", strconv.Itoa(int(eventsRetry.Seconds())))
			writeError(w, r, logger, techlist.Errorf(techlist.EUnavailable, "too many open event streams; try again shortly"))
			return
		}
		defer slots.Give()
		msgs, leave := events.Join()
		defer leave()

		rc := http.NewResponseController(w)
		// The server's WriteTimeout would cut the stream; each write gets
		// its own deadline instead.
		if err := rc.SetWriteDeadline(time.Now().Add(eventsWriteTimeout)); err != nil {
			logger.DebugContext(r.Context(), "events: cannot extend the write deadline", "err", err)
		}
		h := w.Header()
		h.Set("Content-Type", "text/event-stream; charset=utf-8")
		h.Set("Cache-Control", "no-cache, no-transform")
		h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
		w.WriteHeader(http.StatusOK)

		send := func(format string, args ...any) bool {
			_ = rc.SetWriteDeadline(time.Now().Add(eventsWriteTimeout))
			if _, err := fmt.Fprintf(w, format, args...); err != nil {
				return false
			}
			return rc.Flush() == nil
		}
		if !send("retry: %d\n: connected\n\n", eventsRetry.Milliseconds()) {
			return
		}
		tick := time.NewTicker(heartbeat)
		defer tick.Stop()
		for {
			select {
			case <-r.Context().Done():
				return
			case m, ok := <-msgs:
				if !ok {
					return // shutting down, or this client fell behind: it reconnects
				}
				if !send("id: %s\nevent: %s\ndata: %s\n\n", m.ID, techlist.EventTechCreated, m.Data) {
					return
				}
			case <-tick.C:
				if !send(": heartbeat\n\n") {
					return
				}
			}
		}
	}
}

// handleStats answers GET /api/v1/stats with a stats.Snapshot.
func handleStats(logger *slog.Logger, s Stats) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s == nil {
			writeError(w, r, logger, techlist.Errorf(techlist.EUnavailable, "stats are not available on this server"))
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		encode(w, http.StatusOK, s.Stats(r.Context()))
	}
}
