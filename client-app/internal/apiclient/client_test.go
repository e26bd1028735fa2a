package apiclient_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/techlist/client-app/internal/apiclient"
	"github.com/techlist/techlist"
)

// newClient starts h as a fake api-server and returns a client of it.
func newClient(t *testing.T, h http.Handler) *apiclient.Client {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	return apiclient.New(u, &http.Client{Timeout: 5 * time.Second})
}

func TestListTechs(t *testing.T) {
	created := time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)
	tests := []struct {
		name       string
		limit      int
		cursor     string
		xCache     string
		body       string
		wantQuery  string
		wantCached bool
		wantStatus string
		wantIDs    []string
		wantNext   string
	}{
		{
			name:       "hit with next cursor",
			limit:      2,
			xCache:     "HIT",
			body:       `{"data":[{"id":"b","text":"Go","priority":"high","created_at":"2025-03-04T05:06:07Z","submitted_at":"2025-03-04T05:06:06Z"},{"id":"a","text":"Redis","priority":"low","created_at":"2025-03-04T05:06:07Z"}],"next_cursor":"abc","cached":true}`,
			wantQuery:  "limit=2",
			wantCached: true,
			wantStatus: apiclient.CacheHit,
			wantIDs:    []string{"b", "a"},
			wantNext:   "abc",
		},
		{
			name:       "miss on the last page with a cursor sent",
			limit:      20,
			cursor:     "a b/c",
			xCache:     "MISS",
			body:       `{"data":[],"next_cursor":null,"cached":false}`,
			wantQuery:  "cursor=a+b%2Fc&limit=20",
			wantStatus: apiclient.CacheMiss,
			wantIDs:    []string{},
		},
		{
			name:       "bypass when redis is down",
			xCache:     "bypass",
			body:       `{"data":null,"next_cursor":null,"cached":false}`,
			wantStatus: apiclient.CacheBypass,
			wantIDs:    []string{},
		},
		{
			name:       "no header falls back to the cached field",
			body:       `{"data":[],"next_cursor":null,"cached":true}`,
			wantCached: true,
			wantStatus: apiclient.CacheHit,
			wantIDs:    []string{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var gotPath, gotQuery string
			c := newClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				gotPath, gotQuery = r.URL.Path, r.URL.RawQuery
				w.Header().Set("Content-Type", "application/json")
				if tt.xCache != "" {
					w.Header().Set("X-Cache", tt.xCache)
				}
				io.WriteString(w, tt.body)
			}))
			got, err := c.ListTechs(context.Background(), tt.limit, tt.cursor)
			if err != nil {
				t.Fatalf("ListTechs: got error %v, want nil", err)
			}
			if gotPath != "/api/v1/techs" {
				t.Errorf("path: got %q, want /api/v1/techs", gotPath)
			}
			if gotQuery != tt.wantQuery {
				t.Errorf("query: got %q, want %q", gotQuery, tt.wantQuery)
			}
			if got.Cached != tt.wantCached {
				t.Errorf("Cached: got %v, want %v", got.Cached, tt.wantCached)
			}
			if got.CacheStatus != tt.wantStatus {
				t.Errorf("CacheStatus: got %q, want %q", got.CacheStatus, tt.wantStatus)
			}
			ids := []string{}
			for _, tech := range got.Page.Data {
				ids = append(ids, tech.ID)
			}
			if strings.Join(ids, ",") != strings.Join(tt.wantIDs, ",") {
				t.Errorf("ids: got %v, want %v", ids, tt.wantIDs)
			}
			var next string
			if got.Page.NextCursor != nil {
				next = *got.Page.NextCursor
			}
			if next != tt.wantNext {
				t.Errorf("next cursor: got %q, want %q", next, tt.wantNext)
			}
			if len(got.Page.Data) > 0 {
				first := got.Page.Data[0]
				if first.Text != "Go" || first.Priority != techlist.PriorityHigh || !first.CreatedAt.Equal(created) {
					t.Errorf("first tech: got %+v, want Go/high/%v", first, created)
				}
			}
		})
	}
}

func TestCreateTech(t *testing.T) {
	var gotMethod, gotType, gotKey string
	var gotBody map[string]string
	c := newClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotMethod, gotType, gotKey = r.Method, r.Header.Get("Content-Type"), r.Header.Get("Idempotency-Key")
		if err := json.NewDecoder(r.Body).Decode(&gotBody); err != nil {
			t.Errorf("decode request: %v", err)
		}
		w.Header().Set("Location", "/api/v1/techs/0190")
		w.WriteHeader(http.StatusAccepted)
		io.WriteString(w, `{"id":"0190","status":"queued"}`)
	}))
	id, err := c.CreateTech(context.Background(), `Go "1.26" <b>`, "form-key-1")
	if err != nil {
		t.Fatalf("CreateTech: got error %v, want nil", err)
	}
	if id != "0190" {
		t.Errorf("id: got %q, want 0190", id)
	}
	if gotMethod != http.MethodPost || gotType != "application/json" {
		t.Errorf("request: got %s %s, want POST application/json", gotMethod, gotType)
	}
	if gotBody["text"] != `Go "1.26" <b>` {
		t.Errorf("text sent: got %q, want %q", gotBody["text"], `Go "1.26" <b>`)
	}
	if gotKey != "form-key-1" {
		t.Errorf("Idempotency-Key sent: got %q, want form-key-1", gotKey)
	}
	if _, err := c.CreateTech(context.Background(), "Go", ""); err != nil || gotKey != "" {
		t.Errorf("without a key: got error %v, Idempotency-Key %q; want none sent", err, gotKey)
	}
}

// A write that failed is either known not to have been sent, or of unknown
// outcome: the page says which.
func TestCreateTechOutcome(t *testing.T) {
	refused := httptest.NewServer(http.NotFoundHandler())
	refusedURL, _ := url.Parse(refused.URL)
	hang := make(chan struct{})
	defer close(hang)
	tests := []struct {
		name             string
		client           *apiclient.Client
		notSent, unknown bool
	}{
		{"connection refused", apiclient.New(refusedURL, &http.Client{Timeout: 5 * time.Second}), true, false},
		{"reset after sending", newClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.ReadAll(r.Body)
			conn, _, _ := http.NewResponseController(w).Hijack()
			conn.Close()
		})), false, true},
		{"no answer in time", newClientTimeout(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.ReadAll(r.Body)
			select {
			case <-hang:
			case <-r.Context().Done():
			}
		}), 200*time.Millisecond), false, true},
		{"api-server unsure", newClient(t, answering(503, `{"error":{"code":"outcome_unknown","message":"may or may not"}}`)), false, true},
		{"gateway timeout", newClient(t, answering(504, `upstream timed out`)), false, true},
		{"api-server refused", newClient(t, answering(503, `{"error":{"code":"unavailable","message":"no worker"}}`)), false, false},
		{"invalid", newClient(t, answering(400, `{"error":{"code":"invalid","message":"text is required"}}`)), false, false},
	}
	// Closed only now that the other servers have their ports, so none of
	// them can be given this one: nothing listens there any more.
	refused.Close()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.client.CreateTech(context.Background(), "Go", "k")
			if err == nil {
				t.Fatal("got nil error")
			}
			if got := apiclient.NotSent(err); got != tt.notSent {
				t.Errorf("NotSent(%v): got %v, want %v", err, got, tt.notSent)
			}
			if got := apiclient.OutcomeUnknown(err); got != tt.unknown {
				t.Errorf("OutcomeUnknown(%v): got %v, want %v", err, got, tt.unknown)
			}
		})
	}
}

func answering(status int, body string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(status)
		io.WriteString(w, body)
	})
}

func newClientTimeout(t *testing.T, h http.Handler, timeout time.Duration) *apiclient.Client {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	u, _ := url.Parse(srv.URL)
	return apiclient.New(u, &http.Client{Timeout: timeout})
}

func TestErrorAnswers(t *testing.T) {
	tests := []struct {
		name string
		call func(*apiclient.Client) error
		code int
		body string
		want apiclient.APIError
	}{
		{
			name: "invalid text",
			call: create,
			code: 400,
			body: `{"error":{"code":"invalid","message":"text is required","field":"text"}}`,
			want: apiclient.APIError{Status: 400, Code: "invalid", Message: "text is required", Field: "text"},
		},
		{
			name: "rate limited",
			call: create,
			code: 429,
			body: `{"error":{"code":"rate_limited","message":"slow down"}}`,
			want: apiclient.APIError{Status: 429, Code: "rate_limited", Message: "slow down"},
		},
		{
			name: "dependency down on list",
			call: list,
			code: 503,
			body: `{"error":{"code":"unavailable","message":"mysql is unreachable"}}`,
			want: apiclient.APIError{Status: 503, Code: "unavailable", Message: "mysql is unreachable"},
		},
		{
			name: "not json from a proxy",
			call: list,
			code: 502,
			body: `<html>Bad Gateway</html>`,
			want: apiclient.APIError{Status: 502, Code: "unavailable", Message: "bad gateway"},
		},
		{
			name: "health not ok",
			call: health,
			code: 500,
			body: ``,
			want: apiclient.APIError{Status: 500, Code: "internal", Message: "internal server error"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(tt.code)
				io.WriteString(w, tt.body)
			}))
			err := tt.call(c)
			var apiErr *apiclient.APIError
			if !errors.As(err, &apiErr) {
				t.Fatalf("error: got %v (%T), want *apiclient.APIError", err, err)
			}
			if *apiErr != tt.want {
				t.Errorf("APIError: got %+v, want %+v", *apiErr, tt.want)
			}
			if apiclient.IsUnreachable(err) {
				t.Errorf("IsUnreachable: got true, want false for an API answer")
			}
		})
	}
}

func TestTransportFailure(t *testing.T) {
	// A server that is closed before use: the connection is refused.
	srv := httptest.NewServer(http.NotFoundHandler())
	u, _ := url.Parse(srv.URL)
	srv.Close()
	closed := apiclient.New(u, &http.Client{Timeout: 2 * time.Second})

	// A server slower than the client's timeout.
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(2 * time.Second):
		}
	}))
	t.Cleanup(slow.Close)
	su, _ := url.Parse(slow.URL)
	timingOut := apiclient.New(su, &http.Client{Timeout: 50 * time.Millisecond})

	tests := []struct {
		name   string
		client *apiclient.Client
		call   func(*apiclient.Client) error
	}{
		{"list refused", closed, list},
		{"create refused", closed, create},
		{"health refused", closed, health},
		{"list timeout", timingOut, list},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call(tt.client)
			if !apiclient.IsUnreachable(err) {
				t.Fatalf("IsUnreachable(%v): got false, want true", err)
			}
			var apiErr *apiclient.APIError
			if errors.As(err, &apiErr) {
				t.Errorf("error: got an *APIError %v, want a transport error", apiErr)
			}
		})
	}
}

func TestMalformedAnswers(t *testing.T) {
	tests := []struct {
		name string
		call func(*apiclient.Client) error
		body string
		code int
	}{
		{"list not json", list, `not json`, 200},
		{"create without id", create, `{"status":"queued"}`, 202},
		{"list too large", list, `{"data":[],"pad":"` + strings.Repeat("x", apiclient.MaxBodySize) + `"}`, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tt.code)
				io.WriteString(w, tt.body)
			}))
			err := tt.call(c)
			if err == nil {
				t.Fatal("error: got nil, want one")
			}
			var apiErr *apiclient.APIError
			if errors.As(err, &apiErr) || apiclient.IsUnreachable(err) {
				t.Errorf("error: got %v, want neither an API answer nor unreachable", err)
			}
		})
	}
}

func TestBaseURLWithPath(t *testing.T) {
	var gotPath string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotPath = r.URL.Path
	}))
	t.Cleanup(srv.Close)
	u, _ := url.Parse(srv.URL + "/prefix/")
	if err := apiclient.New(u, srv.Client()).Health(context.Background()); err != nil {
		t.Fatalf("Health: got %v, want nil", err)
	}
	if gotPath != "/prefix/healthz" {
		t.Errorf("path: got %q, want /prefix/healthz", gotPath)
	}
}

func list(c *apiclient.Client) error {
	_, err := c.ListTechs(context.Background(), 20, "")
	return err
}

func create(c *apiclient.Client) error {
	_, err := c.CreateTech(context.Background(), "Go", "")
	return err
}

func health(c *apiclient.Client) error { return c.Health(context.Background()) }

// A 404 or 405 from a route the api-server always serves means API_URL
// leads elsewhere: a *WrongURLError naming the address. A 404 for one
// tech is the api-server's answer about that id.
func TestWrongURL(t *testing.T) {
	for _, status := range []int{http.StatusNotFound, http.StatusMethodNotAllowed} {
		c := newClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(status)
		}))
		calls := map[string]func(*apiclient.Client) error{"list": list, "create": create, "health": health,
			"stats": func(c *apiclient.Client) error { _, err := c.Stats(context.Background()); return err }}
		for name, call := range calls {
			err := call(c)
			var we *apiclient.WrongURLError
			if !errors.As(err, &we) || we.Status != status || !strings.Contains(err.Error(), "API_URL") {
				t.Errorf("%s answered %d: got %v, want a *WrongURLError naming API_URL", name, status, err)
			}
			if apiclient.OutcomeUnknown(err) || apiclient.IsUnreachable(err) {
				t.Errorf("%s answered %d: got an unknown outcome or unreachable, want neither", name, status)
			}
		}
	}
	c := newClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNotFound) }))
	if _, err := c.Tech(context.Background(), "01890a5d-ac96-774b-bcce-b302099a8057"); apiclient.IsWrongURL(err) {
		t.Errorf("one tech answered 404: got %v, want the API's answer", err)
	}
}

// /healthz answered 200 by another of the programs (it names itself) is a
// wrong API_URL; by the api-server, or by one that does not say, it is not.
func TestHealthNamesTheProgramThatAnswered(t *testing.T) {
	for who, wrong := range map[string]bool{"worker-server": true, "client-app": true, "api-server": false, "": false} {
		c := newClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if who != "" {
				w.Header().Set("X-Service", who)
			}
			w.Write([]byte("ok"))
		}))
		err := health(c)
		if apiclient.IsWrongURL(err) != wrong || (wrong && !strings.Contains(err.Error(), who)) {
			t.Errorf("/healthz answered by %q: got %v, want a wrong URL: %v", who, err, wrong)
		}
	}
}
