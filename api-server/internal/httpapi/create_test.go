package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/techlist/techlist"
)

var createRoutes = []string{"/api/v1/techs", "/create"}

func TestCreateAccepts(t *testing.T) {
	tests := []struct {
		name, contentType, body, wantText string
	}{
		{"json", "application/json", `{"text":"Go"}`, "Go"},
		{"json trimmed", "application/json", `{"text":"  Redis \t"}`, "Redis"},
		{"json with charset", "application/json; charset=utf-8", `{"text":"MySQL"}`, "MySQL"},
		{"json media type in capitals", "Application/JSON", `{"text":"Go"}`, "Go"},
		{"form", "application/x-www-form-urlencoded", "text=Hello+World%21", "Hello World!"},
		{"form trimmed, other fields ignored", "application/x-www-form-urlencoded", "text=+Go+&submit=Add", "Go"},
		{"form with charset", "application/x-www-form-urlencoded; charset=utf-8", "text=Kafka", "Kafka"},
	}
	for _, route := range createRoutes {
		for _, tt := range tests {
			t.Run(route+" "+tt.name, func(t *testing.T) {
				f := newFixture(t)
				rec := serve(t, f.handler, http.MethodPost, route, tt.contentType, strings.NewReader(tt.body))
				if rec.Code != http.StatusAccepted {
					t.Fatalf("status: got %d, want 202 (body %s)", rec.Code, rec.Body)
				}
				const wantID = "01890a5d-ac96-774b-bcce-000000000001"
				body := decodeJSON(t, rec)
				var want map[string]any
				if route == "/api/v1/techs" {
					want = map[string]any{"id": wantID, "status": "queued"}
					if got := rec.Header().Get("Location"); got != "/api/v1/techs/"+wantID {
						t.Errorf("Location: got %q, want %q", got, "/api/v1/techs/"+wantID)
					}
				} else {
					msg, _ := body["message"].(string)
					if msg == "" {
						t.Errorf("message: got %v, want a non-empty string", body["message"])
					}
					want = map[string]any{"id": wantID, "message": msg}
				}
				if fmt.Sprint(body) != fmt.Sprint(want) {
					t.Errorf("body: got %v, want %v", body, want)
				}

				envs := f.pub.published()
				if len(envs) != 1 {
					t.Fatalf("published: got %d envelopes, want 1", len(envs))
				}
				// The request's id travels in the envelope to the worker's logs.
				reqID := rec.Header().Get("X-Request-Id")
				if reqID == "" {
					t.Error("X-Request-Id: got none")
				}
				wantEnv := techlist.Envelope{V: 1, ID: wantID, Text: tt.wantText, SubmittedAt: testNow, RequestID: reqID}
				if envs[0] != wantEnv {
					t.Errorf("envelope: got %+v, want %+v", envs[0], wantEnv)
				}
				if !f.pending.isMarked(wantID) {
					t.Error("the pending mark was cleared after a successful publish")
				}
			})
		}
	}
}

func TestCreateEachGetsANewID(t *testing.T) {
	f := newFixture(t)
	seen := map[string]bool{}
	for i := 0; i < 3; i++ {
		rec := serve(t, f.handler, http.MethodPost, "/api/v1/techs", "application/json", strings.NewReader(`{"text":"Go"}`))
		id, _ := decodeJSON(t, rec)["id"].(string)
		if seen[id] || !techlist.ValidID(id) {
			t.Errorf("POST %d: got id %q, want a new valid id", i, id)
		}
		seen[id] = true
	}
}

func TestCreateWhenTheQueueFails(t *testing.T) {
	tests := []struct {
		name       string
		markErr    error
		publishErr error
		wantTried  bool   // Publish was called
		wantCode   string // unavailable: not queued; outcome_unknown: it may have been
	}{
		{"no subscribers", nil, techlist.ErrNoSubscribers, true, techlist.EUnavailable},
		{"no subscribers, wrapped", nil, fmt.Errorf("publish: %w", techlist.ErrNoSubscribers), true, techlist.EUnavailable},
		{"redis down on publish", nil, errors.New("dial tcp 127.0.0.1:6379: connection refused"), true, techlist.EOutcomeUnknown},
		{"redis not reached", nil, fmt.Errorf("%w: dial tcp 127.0.0.1:6379: connection refused", techlist.ErrNotSent), true, techlist.EUnavailable},
		{"queue full", nil, techlist.ErrQueueFull, true, techlist.EUnavailable},
		// Published, but without its mark a GET could answer 404: not a 202.
		{"published, mark failed", errors.New("OOM command not allowed"), nil, true, techlist.EOutcomeUnknown},
	}
	for _, route := range createRoutes {
		for _, tt := range tests {
			t.Run(route+" "+tt.name, func(t *testing.T) {
				f := newFixture(t)
				f.pending.markErr = tt.markErr
				f.pub.err = tt.publishErr
				rec := serve(t, f.handler, http.MethodPost, route, "application/json", strings.NewReader(`{"text":"Go"}`))
				e := checkError(t, rec, http.StatusServiceUnavailable, tt.wantCode)
				if strings.Contains(e.Error.Message, "connection refused") {
					t.Errorf("message leaks the cause: %q", e.Error.Message)
				}
				if got := rec.Header().Get("Location"); got != "" {
					t.Errorf("Location: got %q, want none", got)
				}
				if got := f.pub.attempts > 0; got != tt.wantTried {
					t.Errorf("Publish called: got %v, want %v", got, tt.wantTried)
				}
				if n := len(f.pub.published()); n != 0 {
					t.Errorf("published: got %d envelopes, want 0", n)
				}
				switch {
				case tt.wantTried && tt.wantCode == techlist.EUnavailable:
					if len(f.pending.cleared) != 1 || len(f.pending.marks) != 0 {
						t.Errorf("pending marks after a refused publish: got %v (cleared %v), want none left", f.pending.marks, f.pending.cleared)
					}
				case tt.wantCode == techlist.EOutcomeUnknown && tt.markErr == nil:
					// It may have been queued: the id must not answer 404.
					if len(f.pending.cleared) != 0 || len(f.pending.marks) != 1 {
						t.Errorf("pending marks after an unknown outcome: got %v (cleared %v), want the mark kept", f.pending.marks, f.pending.cleared)
					}
				}
			})
		}
	}
}

// TestCreateHostileInput sends what a careless or hostile client might.
// Every refusal is the contract's JSON error and publishes nothing; every
// acceptance publishes exactly the trimmed text that was sent.
func TestCreateHostileInput(t *testing.T) {
	tests := hostileCreates
	if len(tests) < 30 {
		t.Fatalf("only %d hostile rows", len(tests))
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			rec := serve(t, f.handler, http.MethodPost, "/api/v1/techs", tt.contentType, strings.NewReader(tt.body))
			envs := f.pub.published()
			if tt.status == http.StatusAccepted {
				if rec.Code != http.StatusAccepted {
					t.Fatalf("status: got %d, want 202 (body %s)", rec.Code, rec.Body)
				}
				if len(envs) != 1 {
					t.Fatalf("published: got %d envelopes, want 1", len(envs))
				}
				if envs[0].Text != tt.text {
					t.Errorf("published text: got %q, want %q", envs[0].Text, tt.text)
				}
				return
			}
			e := checkError(t, rec, tt.status, tt.code)
			if tt.field != noField && e.Error.Field != tt.field {
				t.Errorf("error.field: got %q, want %q (body %s)", e.Error.Field, tt.field, rec.Body)
			}
			if tt.field == "priority" && !strings.Contains(e.Error.Message, "priority") {
				t.Errorf("error.message: got %q, want it to name the field", e.Error.Message)
			}
			if len(envs) != 0 || f.pub.attempts != 0 {
				t.Errorf("published: got %d envelopes (%d attempts), want none", len(envs), f.pub.attempts)
			}
			if len(f.pending.marks) != 0 {
				t.Errorf("pending marks: got %v, want none", f.pending.marks)
			}
		})
	}
}

// The seed route validates exactly as the versioned one.
func TestSeedCreateRefusesBadInput(t *testing.T) {
	tests := []struct {
		name, contentType, body string
		status                  int
		code                    string
	}{
		{"empty text", "application/json", `{"text":""}`, 400, techlist.EInvalid},
		{"201 chars", "application/json", `{"text":"` + strings.Repeat("x", 201) + `"}`, 400, techlist.EInvalid},
		{"unknown field", "application/json", `{"txt":"Go"}`, 400, techlist.EInvalid},
		{"text/plain", "text/plain", `Go`, 415, techlist.EMediaType},
		{"too large", "application/json", strings.Repeat(" ", testMaxBody+1), 413, techlist.ETooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			rec := serve(t, f.handler, http.MethodPost, "/create", tt.contentType, strings.NewReader(tt.body))
			checkError(t, rec, tt.status, tt.code)
			if n := len(f.pub.published()); n != 0 {
				t.Errorf("published: got %d envelopes, want 0", n)
			}
		})
	}
}

func TestCreateCarriesTheCallersRequestID(t *testing.T) {
	for _, tt := range []struct{ sent, want string }{
		{"client-app/abc-000042", "client-app/abc-000042"},
		{"has spaces and\nnewline", ""}, // replaced by a fresh id
		{strings.Repeat("x", 65), ""},
	} {
		f := newFixture(t)
		rec := serve(t, f.handler, "POST", "/api/v1/techs", "application/json", strings.NewReader(`{"text":"Go"}`), "X-Request-Id", tt.sent)
		envs := f.pub.published()
		if rec.Code != 202 || len(envs) != 1 {
			t.Fatalf("sent %q: got %d with %d envelopes", tt.sent, rec.Code, len(envs))
		}
		got := envs[0].RequestID
		if tt.want != "" && got != tt.want {
			t.Errorf("sent %q: envelope request_id %q, want it carried", tt.sent, got)
		}
		if tt.want == "" && (got == tt.sent || !techlist.ValidRequestID(got)) {
			t.Errorf("sent %q: envelope request_id %q, want a fresh valid one", tt.sent, got)
		}
		if rec.Header().Get("X-Request-Id") != got {
			t.Errorf("response X-Request-Id %q differs from the envelope's %q", rec.Header().Get("X-Request-Id"), got)
		}
	}
}

// A publish whose outcome is unknown (a transport error) is retried, so a
// short Redis outage costs latency rather than a refusal; when it stays
// unknown, the 503 says the tech may have been queued.
func TestCreateRetriesAnUncertainPublish(t *testing.T) {
	f := newFixture(t)
	f.pub.failFirst = []error{errors.New("read: connection reset by peer"), errors.New("dial: connection refused")}
	rec := serve(t, f.handler, "POST", "/api/v1/techs", "application/json", strings.NewReader(`{"text":"Go"}`))
	if rec.Code != http.StatusAccepted {
		t.Fatalf("got %d %s, want 202 after two transport errors", rec.Code, rec.Body)
	}
	if n := len(f.pub.published()); n != 1 {
		t.Errorf("published: got %d, want 1", n)
	}

	f = newFixture(t)
	f.pub.err = errors.New("dial: connection refused")
	rec = serve(t, f.handler, "POST", "/api/v1/techs", "application/json", strings.NewReader(`{"text":"Go"}`))
	e := checkError(t, rec, http.StatusServiceUnavailable, techlist.EOutcomeUnknown)
	if !strings.Contains(e.Error.Message, "may or may not have been queued") {
		t.Errorf("message %q does not say the outcome is unknown", e.Error.Message)
	}
	if n := f.pub.attempts; n < 2 {
		t.Errorf("publish attempts: got %d, want the publish retried", n)
	}

	// A clear refusal is not retried.
	f = newFixture(t)
	f.pub.err = techlist.ErrNoSubscribers
	serve(t, f.handler, "POST", "/api/v1/techs", "application/json", strings.NewReader(`{"text":"Go"}`))
	if n := f.pub.attempts; n != 1 {
		t.Errorf("publish attempts with no subscriber: got %d, want 1", n)
	}
}

// The 202 body written without reflection is byte for byte what
// json.Marshal writes, for our ids and for anything else.
func TestQueuedJSONMatchesMarshal(t *testing.T) {
	for _, id := range []string{"01890a5d-ac96-774b-bcce-000000000001", `odd"<id>\`, ""} {
		want, err := json.Marshal(accepted{ID: id, Status: "queued"})
		if err != nil {
			t.Fatal(err)
		}
		if got := queuedJSON(id); string(got) != string(want) {
			t.Errorf("id %q: got %s, want %s", id, got, want)
		}
	}
}
