package web

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"time"

	"github.com/techlist/techlist"
)

// The techs this browser submitted and has not seen stored yet are kept
// in a cookie, so the page can show each at once, with its text, as
// "queued" (the api-server's 202 answer for a pending id has no text).
const (
	queuedCookie = "queued"
	// maxQueued is how many submissions the cookie remembers.
	maxQueued = 5
	// maxQueuedCookie bounds the cookie's value, under browsers' 4 KiB.
	maxQueuedCookie = 3000
	// queuedCookieAge is how long the cookie lives: as long as the
	// api-server remembers a pending id by default (PENDING_TTL).
	queuedCookieAge = time.Hour
)

// submission is one tech this browser submitted.
type submission struct {
	ID   string `json:"id"`
	Text string `json:"text"`
}

// readQueued returns the submissions in r's cookie, newest first, dropping
// anything malformed.
func readQueued(r *http.Request) []submission {
	c, err := r.Cookie(queuedCookie)
	if err != nil {
		return nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(c.Value)
	if err != nil {
		return nil
	}
	var subs []submission
	if json.Unmarshal(raw, &subs) != nil {
		return nil
	}
	out := subs[:0]
	seen := map[string]bool{}
	for _, s := range subs {
		if !techlist.ValidID(s.ID) || seen[s.ID] || len(out) == maxQueued {
			continue
		}
		if text, err := techlist.ValidateText(s.Text); err != nil || text != s.Text {
			continue
		}
		seen[s.ID] = true
		out = append(out, s)
	}
	return out
}

// writeQueued sets the cookie to subs (newest first), dropping the oldest
// until it fits, or deletes it when subs is empty.
func writeQueued(w http.ResponseWriter, r *http.Request, subs []submission) {
	c := &http.Cookie{
		Name:     queuedCookie,
		Path:     "/",
		HttpOnly: true,
		Secure:   r.TLS != nil,
		SameSite: http.SameSiteLaxMode,
	}
	if len(subs) > maxQueued {
		subs = subs[:maxQueued]
	}
	for ; len(subs) > 0; subs = subs[:len(subs)-1] {
		b, err := json.Marshal(subs)
		if err != nil {
			return
		}
		if v := base64.RawURLEncoding.EncodeToString(b); len(v) <= maxQueuedCookie {
			c.Value, c.MaxAge = v, int(queuedCookieAge.Seconds())
			break
		}
	}
	if c.Value == "" {
		c.MaxAge = -1
	}
	http.SetCookie(w, c)
}
