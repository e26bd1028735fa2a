package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"

	"github.com/techlist/techlist"
)

// statusOf maps each error code to its HTTP status, in one place.
var statusOf = map[string]int{
	techlist.EInvalid:     http.StatusBadRequest,
	techlist.ENotFound:    http.StatusNotFound,
	techlist.EMethod:      http.StatusMethodNotAllowed,
	techlist.EConflict:    http.StatusConflict,
	techlist.ETooLarge:    http.StatusRequestEntityTooLarge,
	techlist.EMediaType:   http.StatusUnsupportedMediaType,
	techlist.ERateLimited: http.StatusTooManyRequests,
	techlist.EUnavailable: http.StatusServiceUnavailable,
	techlist.EInternal:    http.StatusInternalServerError,

	techlist.EIdempotencyMismatch: http.StatusUnprocessableEntity,
	techlist.EOutcomeUnknown:      http.StatusServiceUnavailable,
}

// encode writes v as JSON with status: headers, then the status, then the body.
func encode(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, `{"error":{"code":"internal","message":"internal error"}}`, http.StatusInternalServerError)
		return
	}
	writeJSON(w, status, b)
}

// writeJSON writes JSON bytes that are already encoded.
func writeJSON(w http.ResponseWriter, status int, b []byte) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	w.Write(b)
}

type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

// statusClientClosed is the status recorded for a request whose client
// left before its answer.
const statusClientClosed = 499

// writeError answers with the contract's JSON error for err. Client errors
// are shown as they are; dependency errors are logged with their cause;
// anything else is logged and answered with a generic 500.
func writeError(w http.ResponseWriter, r *http.Request, logger *slog.Logger, err error) {
	if r.Context().Err() != nil && errors.Is(err, context.Canceled) {
		// The client went away mid-request: nothing failed, so no warning,
		// and 499 (nginx's "client closed request") in the request line and
		// the metrics rather than a 5xx anyone can raise by hanging up.
		w.WriteHeader(statusClientClosed)
		return
	}
	var e *techlist.Error
	if !errors.As(err, &e) {
		logger.ErrorContext(r.Context(), "internal error", "err", err, "method", r.Method, "path", r.URL.Path)
		e = &techlist.Error{Code: techlist.EInternal, Message: "internal error"}
	} else if e.Err != nil || e.Code == techlist.EInternal {
		logger.WarnContext(r.Context(), "request failed", "code", e.Code, "err", err, "method", r.Method, "path", r.URL.Path)
	}
	status, ok := statusOf[e.Code]
	if !ok {
		status = http.StatusInternalServerError
	}
	// An error is about this request only: no cache may keep it, and no
	// browser may read it as anything but the JSON it is.
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	encode(w, status, errorBody{Error: errorDetail{Code: e.Code, Message: e.Message, Field: e.Field}})
}
