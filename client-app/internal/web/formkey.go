package web

import (
	"context"
	"crypto/rand"
	"log/slog"
)

// formKeyField is the add form's hidden field holding its idempotency key.
const formKeyField = "idempotency_key"

// newFormKey makes a form's idempotency key: 128 random bits in base32
// (26 characters).
// The key is made when the form is rendered and sent with it as the
// Idempotency-Key, so a double click, a resubmit or a reload of the POST
// stores one tech. A form shown again after an error keeps its key; a form
// rendered fresh (after a success) gets a new one.
func newFormKey() string {
	return rand.Text()
}

// validFormKey reports whether s is a key the form may carry: 16 to 64
// letters, digits, '-' or '_' (this app makes base32 ones; the api-server
// accepts any printable ASCII, but nothing else should come from our form).
func validFormKey(s string) bool {
	if len(s) < 16 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// formKey returns the posted key when it is valid. A missing or malformed
// one (a page from before forms had keys, a hand-made POST) is replaced by
// a fresh key: the submission still goes through, and the form shown again
// after an error carries the new key, so a resend from it is safe.
func formKey(ctx context.Context, logger *slog.Logger, posted string) string {
	if validFormKey(posted) {
		return posted
	}
	logger.DebugContext(ctx, "add form without a valid idempotency key; using a fresh one", "length", len(posted))
	return newFormKey()
}
