package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func mapEnv(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestEnvDefaultsAndValues(t *testing.T) {
	env := NewEnv(mapEnv(map[string]string{
		"N":     " 42 ",
		"D":     "250ms",
		"Z":     "0",
		"MODE":  "Streams",
		"LIST":  "a, b,,c ",
		"TABLE": "tech_list2",
		"URL":   "http://api:5000",
	}))
	if got := env.Int("N", 1, 0, 100); got != 42 {
		t.Errorf("Int: got %d, want 42", got)
	}
	if got := env.Int("UNSET", 7, 0, 100); got != 7 {
		t.Errorf("Int default: got %d, want 7", got)
	}
	if got := env.Duration("D", time.Second); got != 250*time.Millisecond {
		t.Errorf("Duration: got %v, want 250ms", got)
	}
	if got := env.Duration("Z", time.Second); got != 0 {
		t.Errorf("Duration zero: got %v, want 0", got)
	}
	if got := env.Enum("MODE", "pubsub", "pubsub", "streams"); got != "streams" {
		t.Errorf("Enum: got %q, want streams", got)
	}
	if got := strings.Join(env.List("LIST", ""), "|"); got != "a|b|c" {
		t.Errorf("List: got %q, want a|b|c", got)
	}
	if got := env.Identifier("TABLE", "techlist"); got != "tech_list2" {
		t.Errorf("Identifier: got %q", got)
	}
	if got := env.URL("URL", "http://localhost:5000").Host; got != "api:5000" {
		t.Errorf("URL host: got %q", got)
	}
	if err := env.Err(); err != nil {
		t.Fatalf("Err: got %v, want nil", err)
	}
}

func TestEnvErrorsNameTheVariable(t *testing.T) {
	tests := []struct {
		name string
		read func(*Env)
	}{
		{"PORT", func(e *Env) { e.Int("PORT", 5000, 0, 65535) }},
		{"PORT", func(e *Env) { e.Int("PORT", 5000, 0, 10) }},
		{"CACHE_TTL", func(e *Env) { e.Duration("CACHE_TTL", time.Minute) }},
		{"PENDING_TTL", func(e *Env) { e.PositiveDuration("PENDING_TTL", time.Hour) }},
		{"QUEUE_MODE", func(e *Env) { e.Enum("QUEUE_MODE", "pubsub", "pubsub", "streams") }},
		{"MYSQL_TABLE", func(e *Env) { e.Identifier("MYSQL_TABLE", "techlist") }},
		{"API_URL", func(e *Env) { e.URL("API_URL", "http://localhost:5000") }},
	}
	bad := map[string]string{
		"PORT": "50x", "CACHE_TTL": "-5s", "PENDING_TTL": "0", "QUEUE_MODE": "kafka",
		"MYSQL_TABLE": "techs; DROP TABLE x", "API_URL": "ftp://x",
	}
	for _, tt := range tests {
		env := NewEnv(mapEnv(bad))
		tt.read(env)
		err := env.Err()
		if err == nil || !strings.Contains(err.Error(), tt.name) {
			t.Errorf("%s: got error %v, want one naming the variable", tt.name, err)
		}
	}
}

func TestGetenvPrefersRealEnvironment(t *testing.T) {
	path := filepath.Join(t.TempDir(), ".env")
	if err := os.WriteFile(path, []byte("A=file\nB=file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	real := map[string]string{"A": "real"}
	getenv, err := Getenv(func(k string) (string, bool) { v, ok := real[k]; return v, ok }, path)
	if err != nil {
		t.Fatal(err)
	}
	if got := getenv("A"); got != "real" {
		t.Errorf("A: got %q, want real", got)
	}
	if got := getenv("B"); got != "file" {
		t.Errorf("B: got %q, want file", got)
	}
	if _, err := Getenv(func(string) (string, bool) { return "", false }, filepath.Join(t.TempDir(), "missing")); err != nil {
		t.Errorf("missing .env: got %v, want nil", err)
	}
}

func TestEnvFloat(t *testing.T) {
	env := NewEnv(mapEnv(map[string]string{"RATE": " 0.5 ", "WHOLE": "20"}))
	if got := env.Float("RATE", 0, 0, 100); got != 0.5 {
		t.Errorf("Float: got %g, want 0.5", got)
	}
	if got := env.Float("WHOLE", 0, 0, 100); got != 20 {
		t.Errorf("Float of a whole number: got %g, want 20", got)
	}
	if got := env.Float("UNSET", 3, 0, 100); got != 3 {
		t.Errorf("Float default: got %g, want 3", got)
	}
	if err := env.Err(); err != nil {
		t.Fatalf("Err: got %v, want nil", err)
	}
	for _, v := range []string{"fast", "-1", "101", "NaN", "Inf"} {
		env := NewEnv(mapEnv(map[string]string{"RATE_LIMIT": v}))
		env.Float("RATE_LIMIT", 0, 0, 100)
		if err := env.Err(); err == nil || !strings.Contains(err.Error(), "RATE_LIMIT") {
			t.Errorf("RATE_LIMIT=%s: got error %v, want one naming the variable", v, err)
		}
	}
}

// A configuration error is printed, so it never shows a URL's password,
// whether or not the URL parses.
func TestEnvErrorsHideURLPasswords(t *testing.T) {
	for _, tt := range []struct{ value, shown string }{
		{"http://user:S3cretPW@127.0.0.1:notaport", "http://user:xxxxx@127.0.0.1:notaport"},
		{"http://user:S3cret PW@127.0.0.1:1", "http://user:xxxxx@127.0.0.1:1"},
		{"http://user:S3cretPW%zz@127.0.0.1:1", "http://user:xxxxx@127.0.0.1:1"},
		{"ftp://user:S3cretPW@host/x", "ftp://user:xxxxx@host/x"},
		{"user:S3cretPW@host:5000", "user:xxxxx@host:5000"},
		{"http://S3cretPW@host:x", "http://xxxxx@host:x"},
		{"http://user:S3c@retPW@127.0.0.1:x", "http://user:xxxxx@127.0.0.1:x"},
	} {
		env := NewEnv(mapEnv(map[string]string{"API_URL": tt.value}))
		env.URL("API_URL", "http://localhost:5000")
		err := env.Err()
		if err == nil {
			t.Errorf("API_URL=%q: got no error", tt.value)
			continue
		}
		if msg := err.Error(); strings.Contains(msg, "S3c") || !strings.Contains(msg, tt.shown) {
			t.Errorf("API_URL=%q: got %q, want it to show %q and no password", tt.value, msg, tt.shown)
		}
	}
	// Every other check that echoes its value redacts the same way.
	env := NewEnv(mapEnv(map[string]string{"ADMIN_ADDR": "redis://:S3cretPW@host:6379"}))
	env.Fail("ADMIN_ADDR", env.String("ADMIN_ADDR", ""), "want host:port")
	if msg := env.Err().Error(); strings.Contains(msg, "S3cret") {
		t.Errorf("Fail: got %q, want no password", msg)
	}
}
