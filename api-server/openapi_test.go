package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	goredis "github.com/redis/go-redis/v9"
	"github.com/techlist/techlist"
	"github.com/techlist/techlist/mysql"
	"github.com/techlist/techlist/redis"
	"github.com/techlist/techlist/testenv"

	"github.com/techlist/api-server/internal/httpapi"
)

// loadOpenAPI loads and validates the embedded OpenAPI document.
func loadOpenAPI(t *testing.T) *openapi3.T {
	t.Helper()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(httpapi.OpenAPI())
	if err != nil {
		t.Fatalf("load openapi.json: %v", err)
	}
	if err := doc.Validate(loader.Context); err != nil {
		t.Fatalf("openapi.json is not a valid OpenAPI document: %v", err)
	}
	if !doc.IsOpenAPI31OrLater() {
		t.Fatalf("openapi.json: got version %q, want 3.1", doc.OpenAPI)
	}
	return doc
}

func TestOpenAPIDocumentIsValid(t *testing.T) {
	loadOpenAPI(t)
	onDisk, err := os.ReadFile("internal/httpapi/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(onDisk, httpapi.OpenAPI()) {
		t.Error("the embedded document differs from internal/httpapi/openapi.json")
	}
}

// Every route the router serves is documented, and every documented
// operation is served, so a new route cannot go undocumented.
func TestOpenAPIDocumentsEveryRoute(t *testing.T) {
	doc := loadOpenAPI(t)
	reg := prometheus.NewRegistry()
	h := httpapi.NewServer(httpapi.Config{}, httpapi.Deps{
		Logger:   slog.New(slog.DiscardHandler),
		Metrics:  httpapi.NewMetrics(reg),
		Gatherer: reg,
	})
	router, ok := h.(chi.Routes)
	if !ok {
		t.Fatalf("httpapi.NewServer returned a %T, not a chi router; list its routes some other way", h)
	}
	served := make(map[string]bool)
	err := chi.Walk(router, func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		if route != "/" { // a subrouter's "/" is its mount point
			route = strings.TrimSuffix(route, "/")
		}
		served[method+" "+route] = true
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	documented := make(map[string]bool)
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			documented[method+" "+path] = true
		}
	}
	for _, r := range slices.Sorted(maps.Keys(served)) {
		if !documented[r] {
			t.Errorf("route %s is served but not in internal/httpapi/openapi.json", r)
		}
	}
	for _, r := range slices.Sorted(maps.Keys(documented)) {
		if !served[r] {
			t.Errorf("route %s is in internal/httpapi/openapi.json but not served", r)
		}
	}
	if len(served) == 0 {
		t.Error("walked no routes")
	}
}

// exchange is one request to the running server and what it must answer.
type exchange struct {
	name   string
	method string
	target string // path and query
	header map[string]string
	body   string
	status int
	// refused: the request breaks a rule the document states (a bad limit,
	// a missing text, a media type it does not list…), so request
	// validation must fail too. The server's answer is validated all the
	// same.
	refused bool
	// unrouted: no documented operation matches (an unknown path or
	// method); the answer's body must still be the documented Error.
	unrouted error
	check    func(t *testing.T, a answer)
}

// contract validates exchanges against the document and records which
// documented responses were seen.
type contract struct {
	doc    *openapi3.T
	router routers.Router
	seen   map[string]bool // "METHOD /path status"
	pairs  int             // request and response both validated
	others int             // unrouted: only the response body validated
}

func newContract(t *testing.T) *contract {
	t.Helper()
	doc := loadOpenAPI(t)
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	return &contract{doc: doc, router: router, seen: make(map[string]bool)}
}

func (ex exchange) request(t *testing.T, ctx context.Context, base string) *http.Request {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, ex.method, base+ex.target, strings.NewReader(ex.body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range ex.header {
		req.Header.Set(k, v)
	}
	return req
}

// do sends ex to the server at base and validates the request and the
// answer against the document.
func (c *contract) do(t *testing.T, base string, ex exchange) answer {
	t.Helper()
	client := http.Client{Timeout: 10 * time.Second}
	resp, err := client.Do(ex.request(t, context.Background(), base))
	if err != nil {
		t.Fatalf("%s: %s %s: %v", ex.name, ex.method, ex.target, err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("%s: read body: %v", ex.name, err)
	}
	a := answer{resp.StatusCode, resp.Header, body}
	c.validate(t, base, ex, a)
	return a
}

// validate checks the answer a to ex, and validates both against the
// document.
func (c *contract) validate(t *testing.T, base string, ex exchange, a answer) {
	t.Helper()
	ctx := context.Background()
	if a.status != ex.status {
		t.Errorf("%s: %s %s: got %d %s, want %d", ex.name, ex.method, ex.target, a.status, a.body, ex.status)
	}
	if ex.check != nil {
		ex.check(t, a)
	}

	req := ex.request(t, ctx, base)
	route, params, err := c.router.FindRoute(req)
	if ex.unrouted != nil {
		if !errors.Is(err, ex.unrouted) {
			t.Errorf("%s: %s %s: the document's router says %v, want %v", ex.name, ex.method, ex.target, err, ex.unrouted)
		}
		c.checkError(t, ex.name, a)
		c.others++
		return
	}
	if err != nil {
		t.Errorf("%s: %s %s is not in the document: %v", ex.name, ex.method, ex.target, err)
		return
	}
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route}
	err = openapi3filter.ValidateRequest(ctx, in)
	switch {
	case ex.refused && err == nil:
		t.Errorf("%s: the document accepts the request, but the server refused it with %d %s", ex.name, a.status, a.body)
	case !ex.refused && err != nil:
		t.Errorf("%s: the request breaks the document: %v", ex.name, err)
	}
	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in,
		Status:                 a.status,
		Header:                 a.header,
		Options:                &openapi3filter.Options{IncludeResponseStatus: true},
	}
	out.SetBodyBytes(a.body)
	if err := openapi3filter.ValidateResponse(ctx, out); err != nil {
		t.Errorf("%s: %s %s: the answer %d %s breaks the document: %v", ex.name, ex.method, ex.target, a.status, a.body, err)
	}
	c.seen[route.Method+" "+route.Path+" "+strconv.Itoa(a.status)] = true
	c.pairs++
}

// checkError validates an answer no operation documents (404 for an
// unknown path, 405) against the Error schema.
func (c *contract) checkError(t *testing.T, name string, a answer) {
	t.Helper()
	var v any
	if err := json.Unmarshal(a.body, &v); err != nil {
		t.Errorf("%s: body %s: %v", name, a.body, err)
		return
	}
	if err := c.doc.Components.Schemas["Error"].Value.VisitJSON(v, openapi3.EnableJSONSchema2020()); err != nil {
		t.Errorf("%s: body %s is not the documented Error: %v", name, a.body, err)
	}
}

// checkCovered fails for each documented response no exchange provoked.
func (c *contract) checkCovered(t *testing.T) {
	t.Helper()
	for path, item := range c.doc.Paths.Map() {
		for method, op := range item.Operations() {
			for status := range op.Responses.Map() {
				if !c.seen[method+" "+path+" "+status] {
					t.Errorf("%s %s %s is documented, but no exchange provoked it", method, path, status)
				}
			}
		}
	}
}

// startServer runs the api-server with env until the test ends.
func startServer(t *testing.T, env map[string]string) string {
	t.Helper()
	base := "http://127.0.0.1:" + env["PORT"]
	logs := &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- run(ctx, nil, mapenv(env), logs, io.Discard) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-errc:
			if err != nil {
				t.Errorf("run (%s): %v", base, err)
			}
		case <-time.After(15 * time.Second):
			t.Errorf("run (%s) did not return 15s after its context was cancelled", base)
		}
		if t.Failed() {
			t.Logf("logs of the server at %s:\n%s", base, logs.String())
		}
	})
	c := http.Client{Timeout: time.Second}
	for deadline := time.Now().Add(30 * time.Second); ; {
		resp, err := c.Get(base + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return base
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s/healthz did not answer 200 in time (last error %v)", base, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// drain receives from the work channel until ctx ends, standing in for the
// worker so that PUBLISH has a receiver. It counts the messages in n, and
// closes done when it returns.
func drain(ctx context.Context, sub *redis.ChannelConsumer, n *atomic.Int64) (done <-chan struct{}) {
	d := make(chan struct{})
	go func() {
		defer close(d)
		for {
			if _, err := sub.Receive(ctx); err != nil {
				return
			}
			n.Add(1)
		}
	}()
	return d
}

// sseFrame is one frame of an event stream: its fields, and its comments.
type sseFrame struct {
	fields   map[string]string
	comments []string
}

// readFrame reads the next frame of an event stream.
func readFrame(r *bufio.Reader) (sseFrame, error) {
	f := sseFrame{fields: make(map[string]string)}
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return f, err
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "":
			return f, nil
		case strings.HasPrefix(line, ":"):
			f.comments = append(f.comments, strings.TrimSpace(line[1:]))
		default:
			name, value, _ := strings.Cut(line, ":")
			f.fields[name] = strings.TrimPrefix(value, " ")
		}
	}
}

// checkEvents opens GET /api/v1/events, publishes a tech.created event as
// the worker would, and checks that it arrives as the document says.
func (c *contract) checkEvents(t *testing.T, base string, rdb goredis.UniversalClient, channel string, tech techlist.Tech) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	ex := exchange{name: "events", method: "GET", target: "/api/v1/events",
		header: map[string]string{"Accept": "text/event-stream"}, status: 200}
	resp, err := http.DefaultClient.Do(ex.request(t, ctx, base))
	if err != nil {
		t.Fatalf("GET /api/v1/events: %v", err)
	}
	defer resp.Body.Close()
	var read bytes.Buffer
	stream := bufio.NewReader(io.TeeReader(resp.Body, &read))
	defer func() { c.validate(t, base, ex, answer{resp.StatusCode, resp.Header, read.Bytes()}) }()
	if resp.StatusCode != http.StatusOK {
		return
	}
	first, err := readFrame(stream)
	if err != nil || first.fields["retry"] == "" {
		t.Fatalf("first frame of the stream: got %+v (%v), want a retry field", first, err)
	}

	// The server subscribes to the worker's events in the background.
	for {
		var s struct{ Live bool }
		a := request(t, "GET", base+"/api/v1/stats", "", "")
		if json.Unmarshal(a.body, &s) == nil && s.Live {
			break
		}
		if ctx.Err() != nil {
			t.Fatal("the server did not subscribe to the events channel in time")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := redis.NewEventPublisher(rdb, redis.EventsChannel(channel)).PublishCreated(ctx, []techlist.Tech{tech}); err != nil {
		t.Fatal(err)
	}
	for {
		f, err := readFrame(stream)
		if err != nil {
			t.Fatalf("read the event stream: %v (read so far:\n%s)", err, read.String())
		}
		if len(f.fields) == 0 { // a heartbeat
			continue
		}
		if f.fields["event"] != techlist.EventTechCreated || f.fields["id"] != tech.ID {
			t.Errorf("event: got %q id %q, want %q id %q", f.fields["event"], f.fields["id"], techlist.EventTechCreated, tech.ID)
		}
		var data any
		if err := json.Unmarshal([]byte(f.fields["data"]), &data); err != nil {
			t.Fatalf("event data %q: %v", f.fields["data"], err)
		}
		if err := c.doc.Components.Schemas["TechCreatedEvent"].Value.VisitJSON(data, openapi3.EnableJSONSchema2020()); err != nil {
			t.Errorf("event data %s is not the documented TechCreatedEvent: %v", f.fields["data"], err)
		}
		c.others++
		return
	}
}

// TestOpenAPIMatchesTheServer runs the real api-server on the real Redis and
// MySQL, provokes every documented response, and validates each request and
// each answer against the document.
func TestOpenAPIMatchesTheServer(t *testing.T) {
	c := newContract(t)
	rdb, names := testenv.Redis(t)
	env := testEnv(t, names)
	base := startServer(t, env)
	ctx := context.Background()

	// The server has migrated the database; store three techs as the
	// worker would have.
	port, _ := strconv.Atoi(env["MYSQL_PORT"])
	dbCfg := mysql.Config{Host: env["MYSQL_HOST"], Port: port, User: env["MYSQL_USERNAME"],
		Password: env["MYSQL_PASSWORD"], Database: env["MYSQL_DATABASE"], Table: "techlist"}
	db, err := mysql.Open(ctx, dbCfg)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var stored []techlist.Tech
	for i, p := range []techlist.Priority{techlist.PriorityLow, techlist.PriorityMedium, techlist.PriorityHigh} {
		id, err := uuid.NewV7()
		if err != nil {
			t.Fatal(err)
		}
		now := mysql.Now()
		stored = append(stored, techlist.Tech{ID: id.String(), Text: fmt.Sprintf("Tech %d ✓", i), Priority: p,
			SubmittedAt: now.Add(-time.Second), CreatedAt: now})
	}
	if _, err := mysql.NewStore(db, dbCfg.Table).Insert(ctx, stored); err != nil {
		t.Fatal(err)
	}
	newest := stored[2].ID
	unknown := "01890a5d-ac96-774b-bcce-b302099a8057"

	jsonType := map[string]string{"Content-Type": "application/json"}
	formType := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}
	withKey := func(h map[string]string, key string) map[string]string {
		h = maps.Clone(h)
		h["Idempotency-Key"] = key
		return h
	}
	xCache := func(want string) func(*testing.T, answer) {
		return func(t *testing.T, a answer) {
			t.Helper()
			if got := a.header.Get("X-Cache"); got != want {
				t.Errorf("X-Cache: got %q, want %q", got, want)
			}
		}
	}
	var ids []string // of the techs accepted with 202
	queued := func(t *testing.T, a answer) {
		t.Helper()
		var v struct{ ID string }
		if err := json.Unmarshal(a.body, &v); err != nil || v.ID == "" {
			t.Errorf("202 body %s: no id (%v)", a.body, err)
			return
		}
		ids = append(ids, v.ID)
	}

	// The document served is the one embedded.
	a := c.do(t, base, exchange{name: "openapi", method: "GET", target: "/openapi.json", status: 200})
	if !bytes.Equal(a.body, httpapi.OpenAPI()) {
		t.Error("GET /openapi.json differs from the embedded openapi.json")
	}
	if ct := a.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("GET /openapi.json Content-Type: got %q, want application/json", ct)
	}

	var cursor string
	exchanges := []exchange{
		{name: "seed root", method: "GET", target: "/", status: 200},
		{name: "healthz", method: "GET", target: "/healthz", status: 200},
		{name: "readyz", method: "GET", target: "/readyz", status: 200},
		{name: "metrics", method: "GET", target: "/metrics", status: 200},

		{name: "list, first page (miss)", method: "GET", target: "/api/v1/techs?limit=2", status: 200,
			check: func(t *testing.T, a answer) {
				xCache("MISS")(t, a)
				var page techlist.Page
				if err := json.Unmarshal(a.body, &page); err != nil || page.NextCursor == nil || len(page.Data) != 2 {
					t.Fatalf("first page %s: want 2 techs and a next_cursor (%v)", a.body, err)
				}
				cursor = *page.NextCursor
			}},
		{name: "list, first page (hit)", method: "GET", target: "/api/v1/techs?limit=2", status: 200, check: xCache("HIT")},
		{name: "list, default limit", method: "GET", target: "/api/v1/techs", status: 200},
		{name: "list, limit 0", method: "GET", target: "/api/v1/techs?limit=0", status: 400, refused: true},
		{name: "list, limit 101", method: "GET", target: "/api/v1/techs?limit=101", status: 400, refused: true},
		{name: "list, limit abc", method: "GET", target: "/api/v1/techs?limit=abc", status: 400, refused: true},
		{name: "list, bad cursor", method: "GET", target: "/api/v1/techs?cursor=nope", status: 400, refused: true},

		{name: "tech (miss)", method: "GET", target: "/api/v1/techs/" + newest, status: 200, check: xCache("MISS")},
		{name: "tech (hit)", method: "GET", target: "/api/v1/techs/" + newest, status: 200, check: xCache("HIT")},
		{name: "tech, unknown", method: "GET", target: "/api/v1/techs/" + unknown, status: 404},
		{name: "tech, not an id", method: "GET", target: "/api/v1/techs/nope", status: 404, refused: true},
		{name: "seed list", method: "GET", target: "/get", status: 200},

		{name: "unknown path", method: "GET", target: "/nope", status: 404, unrouted: routers.ErrPathNotFound},
		{name: "DELETE techs", method: "DELETE", target: "/api/v1/techs", status: 405, unrouted: routers.ErrMethodNotAllowed},
		{name: "PUT tech", method: "PUT", target: "/api/v1/techs/" + newest, status: 405, unrouted: routers.ErrMethodNotAllowed},
		{name: "POST /get", method: "POST", target: "/get", status: 405, unrouted: routers.ErrMethodNotAllowed},
		{name: "GET /create", method: "GET", target: "/create", status: 405, unrouted: routers.ErrMethodNotAllowed},
		{name: "POST /healthz", method: "POST", target: "/healthz", status: 405, unrouted: routers.ErrMethodNotAllowed},
		{name: "POST /openapi.json", method: "POST", target: "/openapi.json", status: 405, unrouted: routers.ErrMethodNotAllowed},
	}
	for _, path := range []string{"/api/v1/techs", "/create"} {
		exchanges = append(exchanges, exchange{name: "POST " + path + " with no worker", method: "POST", target: path,
			header: jsonType, body: `{"text":"Go"}`, status: 503})
	}
	for _, ex := range exchanges {
		c.do(t, base, ex)
	}
	c.do(t, base, exchange{name: "list, next page", method: "GET", target: "/api/v1/techs?limit=2&cursor=" + cursor, status: 200,
		check: func(t *testing.T, a answer) {
			if !bytes.Contains(a.body, []byte(`"next_cursor":null`)) {
				t.Errorf("last page %s: want next_cursor null", a.body)
			}
		}})

	c.do(t, base, exchange{name: "stats", method: "GET", target: "/api/v1/stats", status: 200,
		check: func(t *testing.T, a answer) {
			var s struct {
				QueueMode string `json:"queue_mode"`
				Total     *int64
				Waiting   *int64
			}
			if err := json.Unmarshal(a.body, &s); err != nil || s.QueueMode != "pubsub" || s.Total == nil || *s.Total != 3 || s.Waiting == nil {
				t.Errorf("stats %s: want queue_mode pubsub, total 3 and a waiting count (%v)", a.body, err)
			}
		}})
	c.checkEvents(t, base, rdb, names.Channel, stored[0])

	// Subscribe, so that PUBLISH has a receiver, as a worker would.
	subCtx, stopSub := context.WithCancel(ctx)
	sub, err := redis.NewChannelConsumer(subCtx, rdb, redis.ChannelConfig{Channel: names.Channel, Worker: "test", Buffer: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var received atomic.Int64
	drained := drain(subCtx, sub, &received)

	// Another request holds this key, as if still in flight.
	busyKey := "in-flight-" + testenv.Suffix()
	if _, err := redis.NewIdempotency(rdb, names.Prefix, time.Minute, time.Minute).Reserve(ctx, busyKey, fingerprintOf("Go"), unknown); err != nil {
		t.Fatal(err)
	}
	exchanges = nil
	for _, path := range []string{"/api/v1/techs", "/create"} {
		key := "key-" + testenv.Suffix()
		var first string
		exchanges = append(exchanges,
			exchange{name: path + " JSON", method: "POST", target: path, header: jsonType, body: `{"text":"  Go 🚀 "}`, status: 202, check: queued},
			exchange{name: path + " JSON with charset", method: "POST", target: path,
				header: map[string]string{"Content-Type": "application/json; charset=utf-8"}, body: `{"text":"Redis"}`, status: 202, check: queued},
			exchange{name: path + " form", method: "POST", target: path, header: formType, body: "text=MariaDB&submit=Add", status: 202, check: queued},
			exchange{name: path + " with a new key", method: "POST", target: path, header: withKey(jsonType, key), body: `{"text":"once"}`, status: 202,
				check: func(t *testing.T, a answer) {
					queued(t, a)
					first = ids[len(ids)-1]
					if a.header.Get("Idempotent-Replayed") != "" {
						t.Errorf("first request with a key: got Idempotent-Replayed %q, want none", a.header.Get("Idempotent-Replayed"))
					}
				}},
			exchange{name: path + " replayed", method: "POST", target: path, header: withKey(jsonType, key), body: `{"text":"once"}`, status: 202,
				check: func(t *testing.T, a answer) {
					if !bytes.Contains(a.body, []byte(first)) || a.header.Get("Idempotent-Replayed") != "true" {
						t.Errorf("replay: got %s Idempotent-Replayed %q, want id %s and true", a.body, a.header.Get("Idempotent-Replayed"), first)
					}
				}},
			exchange{name: path + " key in flight", method: "POST", target: path, header: withKey(jsonType, busyKey), body: `{"text":"Go"}`, status: 409},
			exchange{name: path + " key with another text", method: "POST", target: path, header: withKey(jsonType, key), body: `{"text":"twice"}`, status: 422},
			exchange{name: path + " key too long", method: "POST", target: path, header: withKey(jsonType, strings.Repeat("k", 256)), body: `{"text":"Go"}`, status: 400, refused: true},
			exchange{name: path + " empty text", method: "POST", target: path, header: jsonType, body: `{"text":""}`, status: 400, refused: true},
			exchange{name: path + " blank text", method: "POST", target: path, header: jsonType, body: `{"text":"   "}`, status: 400, refused: true},
			exchange{name: path + " text of 201", method: "POST", target: path, header: jsonType, body: `{"text":"` + strings.Repeat("é", 201) + `"}`, status: 400, refused: true},
			exchange{name: path + " NUL in text", method: "POST", target: path, header: jsonType, body: `{"text":"a\u0000b"}`, status: 400, refused: true},
			exchange{name: path + " text not a string", method: "POST", target: path, header: jsonType, body: `{"text":42}`, status: 400, refused: true},
			exchange{name: path + " unknown member", method: "POST", target: path, header: jsonType, body: `{"text":"Go","extra":1}`, status: 400, refused: true},
			exchange{name: path + " no text", method: "POST", target: path, header: jsonType, body: `{}`, status: 400, refused: true},
			exchange{name: path + " not JSON", method: "POST", target: path, header: jsonType, body: `{"text":`, status: 400, refused: true},
			exchange{name: path + " form without text", method: "POST", target: path, header: formType, body: "name=Go", status: 400, refused: true},
			exchange{name: path + " body over 16 KiB", method: "POST", target: path, header: jsonType, body: `{"text":"` + strings.Repeat("a", 17<<10) + `"}`, status: 413, refused: true},
			exchange{name: path + " text/plain", method: "POST", target: path, header: map[string]string{"Content-Type": "text/plain"}, body: "Go", status: 415, refused: true},
			exchange{name: path + " no content type", method: "POST", target: path, body: `{"text":"Go"}`, status: 415, refused: true},
		)
	}
	for _, ex := range exchanges {
		c.do(t, base, ex)
	}
	for _, id := range ids[:1] {
		c.do(t, base, exchange{name: "tech, pending", method: "GET", target: "/api/v1/techs/" + id, status: 202})
	}
	// Each accepted tech was published once; a replay publishes nothing.
	for deadline := time.Now().Add(5 * time.Second); received.Load() < int64(len(ids)) && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	stopSub()
	<-drained
	sub.Close()
	if got := received.Load(); got != int64(len(ids)) {
		t.Errorf("the channel received %d envelopes, want %d (one per 202 that was not a replay)", got, len(ids))
	}

	// A second server on the same database, with Redis down: reads bypass
	// the cache, writes and readiness fail.
	down := maps.Clone(env)
	down["PORT"] = strconv.Itoa(testenv.FreePort(t))
	down["REDIS_ADDRS"] = "127.0.0.1:" + strconv.Itoa(testenv.FreePort(t))
	down["EVENTS_MAX_CLIENTS"] = "1"
	// Three POSTs at once, then one in 1000s: the three below, then 429s.
	down["RATE_LIMIT"] = "0.001"
	down["RATE_BURST"] = "3"
	downBase := startServer(t, down)
	// Its one event stream taken, a second is refused.
	stream, err := http.Get(downBase + "/api/v1/events")
	if err != nil || stream.StatusCode != http.StatusOK {
		t.Fatalf("first event stream: got %v, %v; want 200", stream, err)
	}
	c.do(t, downBase, exchange{name: "events past EVENTS_MAX_CLIENTS", method: "GET", target: "/api/v1/events", status: 503})
	stream.Body.Close()
	exchanges = []exchange{
		{name: "readyz, Redis down", method: "GET", target: "/readyz", status: 503},
		{name: "list, Redis down", method: "GET", target: "/api/v1/techs", status: 200, check: xCache("BYPASS")},
		{name: "tech, Redis down", method: "GET", target: "/api/v1/techs/" + newest, status: 200, check: xCache("BYPASS")},
		// Without the pending mark, not stored is "cannot tell now", not 404.
		{name: "tech unknown, Redis down", method: "GET", target: "/api/v1/techs/" + unknown, status: 503},
		{name: "seed list, Redis down", method: "GET", target: "/get", status: 200, check: xCache("BYPASS")},
		{name: "POST, Redis down", method: "POST", target: "/api/v1/techs", header: jsonType, body: `{"text":"Go"}`, status: 503},
		{name: "POST with a key, Redis down", method: "POST", target: "/api/v1/techs", header: withKey(jsonType, "k"), body: `{"text":"Go"}`, status: 503},
		{name: "seed POST, Redis down", method: "POST", target: "/create", header: formType, body: "text=Go", status: 503},
		{name: "POST past RATE_BURST", method: "POST", target: "/api/v1/techs", header: jsonType, body: `{"text":"Go"}`, status: 429},
		{name: "seed POST past RATE_BURST", method: "POST", target: "/create", header: formType, body: "text=Go", status: 429},
	}
	for _, ex := range exchanges {
		c.do(t, downBase, ex)
	}

	// With the table gone as well, nothing can answer a read.
	if _, err := db.ExecContext(ctx, "DROP TABLE `"+dbCfg.Table+"`"); err != nil {
		t.Fatal(err)
	}
	exchanges = []exchange{
		{name: "list, nothing answers", method: "GET", target: "/api/v1/techs", status: 503},
		{name: "tech, nothing answers", method: "GET", target: "/api/v1/techs/" + newest, status: 503},
		{name: "seed list, nothing answers", method: "GET", target: "/get", status: 503},
		{name: "stats, nothing answers", method: "GET", target: "/api/v1/stats", status: 200,
			check: func(t *testing.T, a answer) {
				if !bytes.Contains(a.body, []byte(`"waiting":null`)) || !bytes.Contains(a.body, []byte(`"total":null`)) {
					t.Errorf("stats %s: want waiting and total null", a.body)
				}
			}},
	}
	for _, ex := range exchanges {
		c.do(t, downBase, ex)
	}

	c.checkCovered(t)
	t.Logf("validated %d request/response pairs against openapi.json, and %d more bodies against its schemas (unrouted requests' Error, an event's data); %d documented responses provoked",
		c.pairs, c.others, len(c.seen))
}
