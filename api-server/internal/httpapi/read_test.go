package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/techlist/techlist"

	"github.com/techlist/api-server/internal/cacheaside"
)

const (
	listPage = `{"data":[{"id":"01890a5d-ac96-774b-bcce-b302099a8057","text":"Go","priority":"high","created_at":"2026-01-02T03:04:05Z","submitted_at":"2026-01-02T03:04:04Z"}],"next_cursor":"01890a5d-ac96-774b-bcce-b302099a8057"}`
	anID     = "01890a5d-ac96-774b-bcce-b302099a8057"
)

func TestListPassesThePageQuery(t *testing.T) {
	tests := []struct {
		query      string
		wantLimit  int
		wantCursor string
	}{
		{"", 50, ""},
		{"?limit=1", 1, ""},
		{"?limit=100", 100, ""},
		{"?limit=10&cursor=" + anID, 10, anID},
		{"?cursor=" + anID, 50, anID},
		{"?limit=", 50, ""},
		{"?other=1", 50, ""},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			f := newFixture(t)
			f.reader.listBody, f.reader.listStatus = []byte(listPage), cacheaside.Miss
			rec := serve(t, f.handler, http.MethodGet, "/api/v1/techs"+tt.query, "", nil)
			if rec.Code != http.StatusOK {
				t.Fatalf("status: got %d, want 200 (body %s)", rec.Code, rec.Body)
			}
			if f.reader.gotLimit != tt.wantLimit || f.reader.gotCursor != tt.wantCursor {
				t.Errorf("Reader.List got (%d, %q), want (%d, %q)", f.reader.gotLimit, f.reader.gotCursor, tt.wantLimit, tt.wantCursor)
			}
		})
	}
}

func TestListRefusesABadPageQuery(t *testing.T) {
	tests := []struct {
		query, field string
	}{
		{"?limit=0", "limit"},
		{"?limit=101", "limit"},
		{"?limit=-1", "limit"},
		{"?limit=abc", "limit"},
		{"?limit=1.5", "limit"},
		{"?limit=99999999999999999999", "limit"},
		{"?limit=%201", "limit"},
		{"?cursor=bad", "cursor"},
		{"?cursor=01890A5D-AC96-774B-BCCE-B302099A8057", "cursor"},
		{"?cursor=%27+OR+1%3D1+--", "cursor"},
		{"?limit=10&cursor=x", "cursor"},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			f := newFixture(t)
			rec := serve(t, f.handler, http.MethodGet, "/api/v1/techs"+tt.query, "", nil)
			e := checkError(t, rec, http.StatusBadRequest, techlist.EInvalid)
			if e.Error.Field != tt.field {
				t.Errorf("error.field: got %q, want %q", e.Error.Field, tt.field)
			}
			if f.reader.listCalls != 0 {
				t.Errorf("Reader.List called %d times, want 0", f.reader.listCalls)
			}
		})
	}
}

func TestListBodyAndCacheFlag(t *testing.T) {
	tests := []struct {
		status     cacheaside.Status
		wantCached string
	}{
		{cacheaside.Hit, "true"},
		{cacheaside.Miss, "false"},
		{cacheaside.Bypass, "false"},
	}
	for _, tt := range tests {
		t.Run(string(tt.status), func(t *testing.T) {
			f := newFixture(t)
			f.reader.listBody, f.reader.listStatus = []byte(listPage), tt.status
			rec := serve(t, f.handler, http.MethodGet, "/api/v1/techs", "", nil)
			if rec.Code != http.StatusOK {
				t.Fatalf("status: got %d, want 200", rec.Code)
			}
			want := listPage[:len(listPage)-1] + `,"cached":` + tt.wantCached + `}`
			if got := rec.Body.String(); got != want {
				t.Errorf("body:\ngot  %s\nwant %s", got, want)
			}
			if got := rec.Header().Get("X-Cache"); got != string(tt.status) {
				t.Errorf("X-Cache: got %q, want %q", got, tt.status)
			}
			decodeJSON(t, rec) // valid JSON with the JSON content type
			var page struct {
				Data       []techlist.Tech `json:"data"`
				NextCursor *string         `json:"next_cursor"`
				Cached     bool            `json:"cached"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &page); err != nil {
				t.Fatal(err)
			}
			if len(page.Data) != 1 || page.Data[0].Text != "Go" || page.NextCursor == nil || *page.NextCursor != anID {
				t.Errorf("page: got %+v, want the reader's page", page)
			}
		})
	}
}

func TestReadErrors(t *testing.T) {
	tests := []struct {
		name   string
		err    error
		status int
		code   string
	}{
		{"database down", techlist.Unavailable(errors.New("dial tcp: refused"), "the database is unavailable"), 503, techlist.EUnavailable},
		{"unexpected", errors.New("boom"), 500, techlist.EInternal},
	}
	for _, tt := range tests {
		for _, path := range []string{"/api/v1/techs", "/get", "/api/v1/techs/" + anID} {
			t.Run(tt.name+" "+path, func(t *testing.T) {
				f := newFixture(t)
				f.reader.listErr, f.reader.techErr = tt.err, tt.err
				rec := serve(t, f.handler, http.MethodGet, path, "", nil)
				e := checkError(t, rec, tt.status, tt.code)
				if e.Error.Message == "boom" || e.Error.Message == "dial tcp: refused" {
					t.Errorf("message leaks the cause: %q", e.Error.Message)
				}
			})
		}
	}
}

func TestGetTech(t *testing.T) {
	const techJSON = `{"id":"` + anID + `","text":"Go","priority":"high","created_at":"2026-01-02T03:04:05Z","submitted_at":"2026-01-02T03:04:04Z"}`
	tests := []struct {
		name     string
		id       string
		result   cacheaside.TechResult
		err      error
		status   int
		wantBody string // exact, for 200 and 202
		wantCode string // for errors
		asked    bool   // whether the reader is asked
	}{
		{"found in cache", anID, cacheaside.TechResult{JSON: []byte(techJSON), Status: cacheaside.Hit}, nil, 200, techJSON, "", true},
		{"found in MySQL", anID, cacheaside.TechResult{JSON: []byte(techJSON), Status: cacheaside.Miss}, nil, 200, techJSON, "", true},
		{"pending", anID, cacheaside.TechResult{Pending: true, Status: cacheaside.Miss}, nil, 202, `{"id":"` + anID + `","status":"pending"}`, "", true},
		{"not found", anID, cacheaside.TechResult{}, techlist.Errorf(techlist.ENotFound, "no tech with id %s", anID), 404, "", techlist.ENotFound, true},
		{"cannot tell (Redis down, not stored)", anID, cacheaside.TechResult{}, techlist.Unavailable(errors.New("dial tcp: connection refused"), "cannot tell"), 503, "", techlist.EUnavailable, true},
		{"bad id", "abc", cacheaside.TechResult{}, nil, 404, "", techlist.ENotFound, false},
		{"uppercase id", "01890A5D-AC96-774B-BCCE-B302099A8057", cacheaside.TechResult{}, nil, 404, "", techlist.ENotFound, false},
		{"injection id", "%27%20OR%201%3D1%20--", cacheaside.TechResult{}, nil, 404, "", techlist.ENotFound, false},
		{"id too long", anID + "0", cacheaside.TechResult{}, nil, 404, "", techlist.ENotFound, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			f.reader.tech, f.reader.techErr = tt.result, tt.err
			rec := serve(t, f.handler, http.MethodGet, "/api/v1/techs/"+tt.id, "", nil)
			if got := f.reader.techCalls > 0; got != tt.asked {
				t.Errorf("Reader.Tech called: got %v, want %v", got, tt.asked)
			}
			if tt.asked && tt.err == nil && f.reader.gotID != tt.id {
				t.Errorf("Reader.Tech id: got %q, want %q", f.reader.gotID, tt.id)
			}
			if tt.wantCode != "" {
				checkError(t, rec, tt.status, tt.wantCode)
				return
			}
			if rec.Code != tt.status {
				t.Fatalf("status: got %d, want %d (body %s)", rec.Code, tt.status, rec.Body)
			}
			decodeJSON(t, rec)
			if got := rec.Body.String(); got != tt.wantBody {
				t.Errorf("body:\ngot  %s\nwant %s", got, tt.wantBody)
			}
			if got := rec.Header().Get("X-Cache"); got != string(tt.result.Status) {
				t.Errorf("X-Cache: got %q, want %q", got, tt.result.Status)
			}
		})
	}
}

func TestSeedGet(t *testing.T) {
	const twoTechs = `{"data":[` +
		`{"id":"01890a5d-ac96-774b-bcce-b302099a8058","text":"Rust","priority":"low","created_at":"2026-01-02T03:04:06Z","submitted_at":"2026-01-02T03:04:06Z"},` +
		`{"id":"01890a5d-ac96-774b-bcce-b302099a8057","text":"Go","priority":"high","created_at":"2026-01-02T03:04:05Z","submitted_at":"2026-01-02T03:04:05Z"}` +
		`],"next_cursor":null}`
	tests := []struct {
		name   string
		page   string
		status cacheaside.Status
		want   string
	}{
		{"hit", twoTechs, cacheaside.Hit, `{"isCached":true,"data":[` +
			`{"id":"01890a5d-ac96-774b-bcce-b302099a8058","text":"Rust - priority (low)"},` +
			`{"id":"01890a5d-ac96-774b-bcce-b302099a8057","text":"Go - priority (high)"}]}`},
		{"miss", twoTechs, cacheaside.Miss, `{"isCached":false,"data":[` +
			`{"id":"01890a5d-ac96-774b-bcce-b302099a8058","text":"Rust - priority (low)"},` +
			`{"id":"01890a5d-ac96-774b-bcce-b302099a8057","text":"Go - priority (high)"}]}`},
		{"empty", `{"data":[],"next_cursor":null}`, cacheaside.Bypass, `{"isCached":false,"data":[]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			f.reader.listBody, f.reader.listStatus = []byte(tt.page), tt.status
			rec := serve(t, f.handler, http.MethodGet, "/get", "", nil)
			if rec.Code != http.StatusOK {
				t.Fatalf("status: got %d, want 200 (body %s)", rec.Code, rec.Body)
			}
			decodeJSON(t, rec)
			if got := rec.Body.String(); got != tt.want {
				t.Errorf("body:\ngot  %s\nwant %s", got, tt.want)
			}
			if f.reader.gotLimit != 100 || f.reader.gotCursor != "" {
				t.Errorf("Reader.List got (%d, %q), want (100, \"\")", f.reader.gotLimit, f.reader.gotCursor)
			}
		})
	}
}

// A client that hangs up mid-read is not the server failing: its request
// is recorded as 499, not as a 503 anyone could raise by hanging up.
func TestClientGoneIsNotAFailure(t *testing.T) {
	f := newFixture(t)
	f.reader.listErr = techlist.Unavailable(fmt.Errorf("read list page: %w", context.Canceled), "the database is unavailable")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	req := httptest.NewRequest(http.MethodGet, "/api/v1/techs", nil).WithContext(ctx)
	rec := httptest.NewRecorder()
	f.handler.ServeHTTP(rec, req)
	if rec.Code != statusClientClosed {
		t.Errorf("status: got %d, want %d", rec.Code, statusClientClosed)
	}
	metrics := serve(t, f.handler, http.MethodGet, "/metrics", "", nil).Body.String()
	if !strings.Contains(metrics, `route="/api/v1/techs",status="499"} 1`) || strings.Contains(metrics, `route="/api/v1/techs",status="503"`) {
		t.Errorf("request series: want one 499 and no 503 for /api/v1/techs:\n%s", grepLines(metrics, "api_http_requests_total"))
	}
	// The same error while the client is still there is the 503 it says.
	rec = serve(t, f.handler, http.MethodGet, "/api/v1/techs", "", nil)
	checkError(t, rec, http.StatusServiceUnavailable, techlist.EUnavailable)
}

func grepLines(s, prefix string) string {
	var out []string
	for line := range strings.Lines(s) {
		if strings.HasPrefix(line, prefix) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "")
}
