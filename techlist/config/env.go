// Package config reads a service's settings from its environment: typed
// values with defaults, an optional .env file, and the logger.
package config

import (
	"errors"
	"fmt"
	"math"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Env reads typed values through getenv. Each accessor returns its default
// when the variable is unset or empty, and records an error naming the
// variable when the value is malformed; Err reports them all at once so a
// misconfigured service stops with every problem listed.
type Env struct {
	getenv func(string) string
	errs   []error
}

// NewEnv returns an Env reading through getenv.
func NewEnv(getenv func(string) string) *Env {
	return &Env{getenv: getenv}
}

func (e *Env) lookup(name string) (string, bool) {
	v := strings.TrimSpace(e.getenv(name))
	return v, v != ""
}

// fail records a problem with a variable. The error shows the value, with
// any URL user information redacted (see redactUserinfo): the error is
// printed, and a password in it must not be.
func (e *Env) fail(name, value, want string) {
	e.errs = append(e.errs, fmt.Errorf("%s=%q: %s", name, redactUserinfo(value), want))
}

// redactUserinfo hides what may be a password in a value that is, or was
// meant to be, a URL, whether or not it parses (url.URL.Redacted needs a
// URL that does): everything between the "//" before it (or the start) and
// the last "@" is user information. A user name before a ":" is kept, the
// rest becomes xxxxx; with no ":" all of it does (it may be a token).
// A value without "@" is returned unchanged.
func redactUserinfo(v string) string {
	at := strings.LastIndexByte(v, '@')
	if at < 0 {
		return v
	}
	start := 0
	if i := strings.Index(v[:at], "//"); i >= 0 {
		start = i + 2
	}
	user := ""
	if i := strings.IndexByte(v[start:at], ':'); i >= 0 {
		user = v[start:start+i] + ":"
	}
	return v[:start] + user + "xxxxx" + v[at:]
}

// String returns the variable's value, or def when it is unset or empty.
func (e *Env) String(name, def string) string {
	if v, ok := e.lookup(name); ok {
		return v
	}
	return def
}

// Raw returns the variable's value untrimmed, or def when it is unset or
// empty; for secrets such as passwords where every byte counts.
func (e *Env) Raw(name, def string) string {
	if v := e.getenv(name); v != "" {
		return v
	}
	return def
}

// Int returns the variable as an integer in [min, max].
func (e *Env) Int(name string, def, min, max int) int {
	v, ok := e.lookup(name)
	if !ok {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < min || n > max {
		e.fail(name, v, fmt.Sprintf("want a whole number from %d to %d", min, max))
		return def
	}
	return n
}

// Float returns the variable as a number in [min, max], such as 0.5.
func (e *Env) Float(name string, def, min, max float64) float64 {
	v, ok := e.lookup(name)
	if !ok {
		return def
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || math.IsNaN(f) || f < min || f > max {
		e.fail(name, v, fmt.Sprintf("want a number from %g to %g", min, max))
		return def
	}
	return f
}

// Duration returns the variable as a Go duration such as 250ms or 1m30s;
// a bare 0 means zero. Negative durations are rejected.
func (e *Env) Duration(name string, def time.Duration) time.Duration {
	v, ok := e.lookup(name)
	if !ok {
		return def
	}
	if v == "0" {
		return 0
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		e.fail(name, v, "want a non-negative duration such as 250ms, 5s or 1m")
		return def
	}
	return d
}

// PositiveDuration is Duration for settings where zero makes no sense (a
// TTL of zero would mean "never expires" to Redis).
func (e *Env) PositiveDuration(name string, def time.Duration) time.Duration {
	v, ok := e.lookup(name)
	d := e.Duration(name, def)
	if ok && d == 0 {
		e.fail(name, v, "want a positive duration such as 250ms, 5s or 1m")
		return def
	}
	return d
}

// Enum returns the variable's value, which must be one of allowed.
func (e *Env) Enum(name, def string, allowed ...string) string {
	v, ok := e.lookup(name)
	if !ok {
		return def
	}
	for _, a := range allowed {
		if strings.EqualFold(v, a) {
			return a
		}
	}
	e.fail(name, v, "want one of "+strings.Join(allowed, ", "))
	return def
}

// List returns the variable as a comma-separated list with blanks dropped.
func (e *Env) List(name, def string) []string {
	v := e.String(name, def)
	var out []string
	for _, item := range strings.Split(v, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// URL returns the variable as an absolute http or https URL.
func (e *Env) URL(name, def string) *url.URL {
	v := e.String(name, def)
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		// fail redacts a password, parsable or not.
		e.fail(name, v, "want an absolute http:// or https:// URL")
		u, _ = url.Parse(def)
	}
	return u
}

var identifier = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,63}$`)

// Identifier returns the variable as an SQL identifier: a letter or
// underscore, then letters, digits or underscores, 64 at most. Names that
// pass can be quoted into SQL safely, since placeholders cannot name tables.
func (e *Env) Identifier(name, def string) string {
	v, ok := e.lookup(name)
	if !ok {
		return def
	}
	if !identifier.MatchString(v) {
		e.fail(name, v, "want an identifier: letters, digits and underscores, starting with a letter or underscore, at most 64")
		return def
	}
	return v
}

// Fail records a problem with a variable found by the caller.
func (e *Env) Fail(name, value, want string) { e.fail(name, value, want) }

// Err returns every problem found so far, or nil.
func (e *Env) Err() error {
	if len(e.errs) == 0 {
		return nil
	}
	return fmt.Errorf("configuration: %w", errors.Join(e.errs...))
}

// ValidIdentifier reports whether s is a safe SQL identifier (see Identifier).
func ValidIdentifier(s string) bool { return identifier.MatchString(s) }
