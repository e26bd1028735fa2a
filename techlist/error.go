package techlist

import (
	"errors"
	"fmt"
)

// Error codes, each mapped to one HTTP status by the api-server.
const (
	EInvalid     = "invalid"                // 400
	ENotFound    = "not_found"              // 404
	EMethod      = "method_not_allowed"     // 405
	EConflict    = "conflict"               // 409
	ETooLarge    = "too_large"              // 413
	EMediaType   = "unsupported_media_type" // 415
	ERateLimited = "rate_limited"           // 429
	EUnavailable = "unavailable"            // 503
	EInternal    = "internal"               // 500
)

// Error codes of the Idempotency-Key header.
const (
	// EIdempotencyMismatch: a key reused with another request (422).
	EIdempotencyMismatch = "idempotency_mismatch"
	// EOutcomeUnknown: a dependency failed after the request may have taken
	// effect; retrying with the same Idempotency-Key is safe (503).
	EOutcomeUnknown = "outcome_unknown"
)

// Error is an error a client can act on: a code, a message for people and,
// for invalid input, the field it concerns.
type Error struct {
	Code    string
	Message string
	Field   string
	Err     error // the cause, for logs; never shown to the client
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	if e.Field != "" {
		return fmt.Sprintf("%s: %s (field %s)", e.Code, e.Message, e.Field)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

// Errorf returns an *Error with the given code and formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Unavailable returns an EUnavailable error: a dependency is down. message
// is for the client; cause is kept for the logs.
func Unavailable(cause error, message string) *Error {
	return &Error{Code: EUnavailable, Message: message, Err: cause}
}

// Invalid returns an EInvalid error about one field.
func Invalid(field, message string) *Error {
	return &Error{Code: EInvalid, Message: message, Field: field}
}

// Invalidf is Invalid with a formatted message.
func Invalidf(field, format string, args ...any) *Error {
	return Invalid(field, fmt.Sprintf(format, args...))
}

// ErrorCode returns the code of the first *Error in err's chain, or
// EInternal when there is none: anything unexpected is internal.
func ErrorCode(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EInternal
}
