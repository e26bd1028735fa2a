package httpapi

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/go-chi/chi/v5"
	"github.com/techlist/techlist"
	"github.com/techlist/techlist/retry"

	"github.com/techlist/api-server/internal/cacheaside"
)

const (
	defaultLimit = 50
	maxLimit     = 100
)

// pageQuery reads ?limit and ?cursor.
func pageQuery(r *http.Request) (int, string, error) {
	q := r.URL.Query()
	limit := defaultLimit
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxLimit {
			return 0, "", techlist.Invalidf("limit", "limit must be a whole number from 1 to %d", maxLimit)
		}
		limit = n
	}
	cursor := q.Get("cursor")
	if cursor != "" && !techlist.ValidID(cursor) {
		return 0, "", techlist.Invalid("cursor", "cursor is not one this API returned; start again without it")
	}
	return limit, cursor, nil
}

func handleListTechs(logger *slog.Logger, reader Reader) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		limit, cursor, err := pageQuery(r)
		if err != nil {
			writeError(w, r, logger, err)
			return
		}
		page, status, err := reader.List(r.Context(), limit, cursor)
		if err != nil {
			writeError(w, r, logger, err)
			return
		}
		body := cacheaside.PageJSON(page, status)
		h := w.Header()
		h.Set("Content-Type", "application/json; charset=utf-8")
		h.Set("Content-Length", strconv.Itoa(len(body)))
		h.Set("X-Cache", string(status))
		w.WriteHeader(http.StatusOK)
		w.Write(body) // one write: a hit's bytes go out as they are cached
	}
}

func handleGetTech(logger *slog.Logger, reader Reader) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id := chi.URLParam(r, "id")
		if !techlist.ValidID(id) {
			writeError(w, r, logger, techlist.Errorf(techlist.ENotFound, "no tech with id %q", clip(id, maxEchoedID)))
			return
		}
		res, err := reader.Tech(r.Context(), id)
		if err != nil {
			writeError(w, r, logger, err)
			return
		}
		w.Header().Set("X-Cache", string(res.Status))
		if res.Pending {
			encode(w, http.StatusAccepted, accepted{ID: id, Status: "pending"})
			return
		}
		writeJSON(w, http.StatusOK, res.JSON)
	}
}

// maxEchoedID is how much of an id that is not one the 404 repeats: an id
// is 36 characters, and a path can be 64 KiB.
const maxEchoedID = 64

// clip returns s cut to at most n bytes on a rune boundary, with "…"
// after it when it was cut.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

type accepted struct {
	ID     string `json:"id"`
	Status string `json:"status"`
}

func handleCreateTech(cfg Config, d Deps) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, err := accept(w, r, cfg, d)
		if err != nil {
			writeError(w, r, d.Logger, err)
			return
		}
		w.Header().Set("Location", "/api/v1/techs/"+id)
		writeJSON(w, http.StatusAccepted, queuedJSON(id))
	}
}

// queuedJSON is the JSON of accepted{ID: id, Status: "queued"}, written
// without reflection: id is one of ours (a UUID, checked by
// techlist.ValidID), so it has nothing to escape.
func queuedJSON(id string) []byte {
	if !techlist.ValidID(id) {
		b, _ := json.Marshal(accepted{ID: id, Status: "queued"})
		return b
	}
	b := make([]byte, 0, len(`{"id":"","status":"queued"}`)+len(id))
	b = append(b, `{"id":"`...)
	b = append(b, id...)
	return append(b, `","status":"queued"}`...)
}

// accept validates a submission, gives it an id and hands it to the worker.
// The id is returned only once the message is with the queue: a submission
// the queue did not take is not claimed as accepted. A request with an
// Idempotency-Key is bound to the key's first request (see acceptOnce).
func accept(w http.ResponseWriter, r *http.Request, cfg Config, d Deps) (string, error) {
	key, err := idempotencyKey(r)
	if err != nil {
		return "", err
	}
	text, err := decodeText(w, r, cfg.MaxBodyBytes)
	if err != nil {
		return "", err
	}
	id, err := d.NewID()
	if err != nil {
		return "", err
	}
	if key != "" {
		return acceptOnce(r.Context(), w.Header(), cfg, d, key, text, id)
	}
	if err := publish(r.Context(), cfg, d, id, text); err != nil {
		return "", err
	}
	return id, nil
}

// acceptOnce is accept for a request with an Idempotency-Key: the key's
// first request publishes (with id); the same request again gets the same
// id without publishing; another request with the key is refused (422);
// while one is in flight the others get 409. A request that crashed, or
// could not tell whether its tech was queued, leaves the key's id for the
// next request with the key to publish again.
func acceptOnce(ctx context.Context, h http.Header, cfg Config, d Deps, key, text, id string) (string, error) {
	res, err := d.Idempotency.Reserve(ctx, key, fingerprint(text), id)
	if err != nil {
		return "", techlist.Unavailable(err, "the queue (Redis) is unavailable; the tech was not accepted, try again shortly")
	}
	switch res.Outcome {
	case techlist.KeyMismatch:
		return "", techlist.Errorf(techlist.EIdempotencyMismatch, "this Idempotency-Key was already used with another text; use a new key for a new tech")
	case techlist.KeyBusy:
		return "", techlist.Errorf(techlist.EConflict, "a request with this Idempotency-Key is still in progress; retry shortly")
	case techlist.KeyReplay:
		h.Set("Idempotent-Replayed", "true")
		return res.ID, nil
	}
	err = publish(ctx, cfg, d, res.ID, text)
	settleKey(ctx, d, res, err)
	if err != nil && res.Outcome == techlist.KeyRetaken && techlist.ErrorCode(err) != techlist.EOutcomeUnknown {
		// Refused now, but the earlier request may have queued the id.
		return "", &techlist.Error{Code: techlist.EOutcomeUnknown, Err: err, Message: "an earlier request with this " +
			"Idempotency-Key may have been queued, and this one was not (" + clientMessage(err) + "); retrying with the same key is safe"}
	}
	if err != nil {
		return "", err
	}
	return res.ID, nil
}

// settleKey records what became of a reserved key's request: accepted
// (replayed from now on), clearly refused (forgotten, so a retry starts
// afresh), or unknown (the id is kept, and the next request with the key
// publishes it again). When Redis cannot record it, the reservation's short
// lease ends the same way as a crash: a retry publishes the id again.
func settleKey(ctx context.Context, d Deps, res techlist.KeyReservation, publishErr error) {
	// This must run even if the client went away meanwhile.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	var err error
	switch {
	case publishErr == nil:
		err = d.Idempotency.Confirm(ctx, res)
	case res.Outcome == techlist.KeyReserved && techlist.ErrorCode(publishErr) != techlist.EOutcomeUnknown:
		err = d.Idempotency.Release(ctx, res)
	default:
		err = d.Idempotency.Unknown(ctx, res)
	}
	if err != nil {
		d.Logger.WarnContext(ctx, "idempotency key not settled; it stays in flight until its lease ends", "err", err)
	}
}

// fingerprint identifies a request for its Idempotency-Key: the validated
// text, so the same tech sent as JSON or as a form, or with other spacing
// around it, is the same request.
func fingerprint(text string) string {
	sum := sha256.Sum256([]byte(text))
	return hex.EncodeToString(sum[:])
}

func clientMessage(err error) string {
	var e *techlist.Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "the queue is unavailable"
}

// publish puts id's envelope on the queue; the Publisher marks id pending
// in the same round trip, so a GET right after the 202 sees "pending".
func publish(ctx context.Context, cfg Config, d Deps, id, text string) error {
	env := techlist.NewEnvelope(id, text, d.Now())
	env.RequestID = techlist.RequestID(ctx)
	err := d.Publisher.Publish(ctx, env)
	// A transport error leaves it unknown whether the message got through.
	// Sending it again is harmless (the stream appends an id once; a
	// repeated pub/sub message stores one row), so it is retried for a
	// while: a short Redis outage then costs latency, not a refusal.
	deadline := time.Now().Add(cfg.PublishRetry)
	backoff := retry.Backoff{Min: 100 * time.Millisecond, Max: time.Second}
	for uncertain(err) && ctx.Err() == nil {
		wait := backoff.Next()
		if !time.Now().Add(wait).Before(deadline) {
			break
		}
		retry.Sleep(ctx, wait)
		err = d.Publisher.Publish(ctx, env)
	}
	if err == nil {
		d.Metrics.published()
		return nil
	}
	d.Metrics.publishFailed()
	if uncertain(err) {
		// It may have been queued: the pending mark stays, so the id never
		// answers 404 while the worker may still store it (the mark ends
		// with the row, or after PENDING_TTL).
		return &techlist.Error{Code: techlist.EOutcomeUnknown, Err: err, Message: "Redis did not confirm the submission, so it may " +
			"or may not have been queued; sending it again with the same Idempotency-Key is safe (without one, check the list first)"}
	}
	// Not accepted after all; a failure to unmark only delays the 404.
	cleanupCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	d.Pending.ClearPending(cleanupCtx, id)
	switch {
	case errors.Is(err, techlist.ErrNoSubscribers):
		return techlist.Unavailable(err, "no worker is listening, so the tech was not accepted; try again shortly")
	case errors.Is(err, techlist.ErrQueueFull):
		return techlist.Unavailable(err, "the queue is full, so the tech was not accepted; try again later")
	default:
		return techlist.Unavailable(err, "the queue (Redis) is unavailable; the tech was not accepted, try again shortly")
	}
}

// uncertain reports whether a publish failed in a way that leaves its
// outcome unknown: not a clear refusal (nobody listening, queue full,
// nothing sent).
func uncertain(err error) bool {
	return err != nil && !errors.Is(err, techlist.ErrNoSubscribers) && !errors.Is(err, techlist.ErrQueueFull) &&
		!errors.Is(err, techlist.ErrNotSent)
}

// idempotencyKey returns the request's Idempotency-Key header, checked: 1
// to 255 printable ASCII characters.
func idempotencyKey(r *http.Request) (string, error) {
	values := r.Header.Values("Idempotency-Key")
	if len(values) == 0 {
		return "", nil
	}
	key := values[0]
	ok := len(values) == 1 && len(key) >= 1 && len(key) <= 255
	for i := 0; ok && i < len(key); i++ {
		ok = key[i] >= 0x20 && key[i] < 0x7f
	}
	if !ok {
		return "", techlist.Invalid("Idempotency-Key", "Idempotency-Key must be one header of 1 to 255 printable ASCII characters")
	}
	return key, nil
}

func handleSeedRoot() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("OK!"))
	}
}

type seedItem struct {
	ID   string `json:"id"`
	Text string `json:"text"`
}

// handleSeedGet answers the seed's GET /get: the newest maxLimit techs,
// each rendered "<text> - priority (<priority>)".
func handleSeedGet(logger *slog.Logger, reader Reader) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		b, status, err := reader.List(r.Context(), maxLimit, "")
		if err != nil {
			writeError(w, r, logger, err)
			return
		}
		var page techlist.Page
		if err := json.Unmarshal(b, &page); err != nil {
			writeError(w, r, logger, err)
			return
		}
		items := make([]seedItem, len(page.Data))
		for i, t := range page.Data {
			items[i] = seedItem{ID: t.ID, Text: t.SeedText()}
		}
		w.Header().Set("X-Cache", string(status))
		encode(w, http.StatusOK, struct {
			IsCached bool       `json:"isCached"`
			Data     []seedItem `json:"data"`
		}{status == cacheaside.Hit, items})
	}
}

func handleSeedCreate(cfg Config, d Deps) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, err := accept(w, r, cfg, d)
		if err != nil {
			writeError(w, r, d.Logger, err)
			return
		}
		w.Header().Set("Location", "/api/v1/techs/"+id)
		encode(w, http.StatusAccepted, struct {
			Message string `json:"message"`
			ID      string `json:"id"`
		}{"Tech queued for analysis", id})
	}
}
