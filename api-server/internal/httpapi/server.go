// Package httpapi is the api-server's HTTP surface: the versioned JSON API,
// the seed-compatible routes, health, readiness and metrics.
package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/techlist/techlist"
	"github.com/techlist/techlist/service"

	"github.com/techlist/api-server/internal/cacheaside"
)

// Reader serves cache-aside reads.
type Reader interface {
	List(ctx context.Context, limit int, cursor string) ([]byte, cacheaside.Status, error)
	Tech(ctx context.Context, id string) (cacheaside.TechResult, error)
}

// Publisher hands an accepted envelope to the worker and marks its id
// pending (until the worker stores it), in one round trip. It returns nil
// only when both took; techlist.ErrNoSubscribers, techlist.ErrQueueFull
// or techlist.ErrNotSent when the envelope was clearly not queued; any
// other error leaves that unknown.
type Publisher interface {
	Publish(ctx context.Context, env techlist.Envelope) error
}

// Pending forgets the mark of a tech the queue refused.
type Pending interface {
	ClearPending(ctx context.Context, ids ...string) error
}

// Idempotency binds each Idempotency-Key to its first request and id.
type Idempotency interface {
	Reserve(ctx context.Context, key, fingerprint, id string) (techlist.KeyReservation, error)
	Confirm(ctx context.Context, res techlist.KeyReservation) error
	Unknown(ctx context.Context, res techlist.KeyReservation) error
	Release(ctx context.Context, res techlist.KeyReservation) error
}

// Config holds the server's settings.
type Config struct {
	CORSOrigins  []string
	MaxBodyBytes int64
	// PublishRetry is how long a publish whose outcome is unknown (a
	// transport error) is retried before the POST answers 503.
	PublishRetry time.Duration
	// EventsHeartbeat is how often an idle event stream gets a comment
	// line; zero means 15s.
	EventsHeartbeat time.Duration
	// EventsMaxClients bounds the open GET /api/v1/events streams; past
	// it a new one gets 503. Zero means 512.
	EventsMaxClients int
	// RateLimit is how many POSTs a second one client IP may send, to
	// POST /api/v1/techs and POST /create together; past it they get 429.
	// Zero means no limit. RateBurst is how many it may send at once; zero
	// means twice RateLimit.
	RateLimit float64
	RateBurst int
	// MaxInFlight bounds the requests to the techs routes (and the seed's
	// /get and /create) being served at once; past it one gets 503 at
	// once. Zero means no bound.
	MaxInFlight int
}

// Deps are what the server needs. Every field must be set except three:
// Events and Stats may be nil (their routes then answer 503), and Checks
// may be empty (GET /readyz then answers ready without checking anything).
// Idempotency is used only by a POST with an Idempotency-Key, but any
// client may send one, so it is required too.
type Deps struct {
	Logger    *slog.Logger
	Reader    Reader
	Publisher Publisher
	Pending   Pending
	// Idempotency serves the Idempotency-Key header of POSTs.
	Idempotency Idempotency
	Checks      []service.Check
	Metrics     *Metrics
	Gatherer    prometheus.Gatherer
	NewID       func() (string, error)
	Now         func() time.Time
	// Events relays the worker's events (GET /api/v1/events) and Stats
	// gathers GET /api/v1/stats; when nil, those routes answer 503.
	Events Events
	Stats  Stats
}

// NewServer returns the api-server's handler.
func NewServer(cfg Config, deps Deps) http.Handler {
	return routes(cfg, deps)
}
