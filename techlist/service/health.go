package service

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"sync"
	"time"
)

// Check is a named readiness probe of one dependency.
type Check struct {
	Name string
	Ping func(context.Context) error
	// Explain shows the error's text in the answer, under details: set
	// it only for a check whose errors hold no address nor credentials
	// (a Watch's problems).
	Explain bool
}

// ServiceHeader names the program that answers /healthz, so that a client
// pointed at the wrong one (the client-app's API_URL at a worker, say)
// can tell.
const ServiceHeader = "X-Service"

// Healthz answers 200 "ok" while the process serves.
func Healthz(service string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(ServiceHeader, service)
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("ok"))
	}
}

// Readyz runs every check at once, each within two seconds, and answers 200
// {"status":"ready",…} or 503 {"status":"unavailable","failing":[names],…}.
// The answer names a failing dependency and nothing more: a driver's error
// carries addresses and user names, so it goes to the log, not to whoever
// asked. Only a check that says so (Explain) has its error in "details".
func Readyz(logger *slog.Logger, checks ...Check) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		results := make([]string, len(checks))
		errs := make([]error, len(checks))
		var wg sync.WaitGroup
		for i, c := range checks {
			wg.Add(1)
			go func() {
				defer wg.Done()
				results[i] = "ok"
				if err := c.Ping(ctx); err != nil {
					results[i], errs[i] = "unavailable", err
					logger.WarnContext(ctx, "not ready", "dependency", c.Name, "err", err)
				}
			}()
		}
		wg.Wait()
		body := struct {
			Status  string            `json:"status"`
			Failing []string          `json:"failing,omitempty"`
			Checks  map[string]string `json:"checks"`
			Details map[string]string `json:"details,omitempty"`
		}{Status: "ready", Checks: make(map[string]string, len(checks))}
		for i, c := range checks {
			body.Checks[c.Name] = results[i]
			if results[i] != "ok" {
				body.Failing = append(body.Failing, c.Name)
			}
			if errs[i] != nil && c.Explain {
				if body.Details == nil {
					body.Details = map[string]string{}
				}
				body.Details[c.Name] = errs[i].Error()
			}
		}
		code := http.StatusOK
		if len(body.Failing) > 0 {
			body.Status, code = "unavailable", http.StatusServiceUnavailable
		}
		b, _ := json.Marshal(body) // a struct of strings always encodes
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(code)
		w.Write(b)
	}
}
