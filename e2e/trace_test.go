package e2e

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/techlist/techlist"
	"github.com/techlist/techlist/redis"
	"github.com/techlist/techlist/testenv"
	"github.com/techlist/techlist/testenv/otlpreceiver"
)

// TestOneTraceFromFormToRow: with an OTLP endpoint set, a tech posted
// through the client-app's form is one trace across the three programs:
// the client-app's server span and its call to the api-server; the
// api-server's server span, named by its route, with its Redis commands
// and its publish span; the worker's process span, a child of that publish
// span; the batch's span, linked to the process span, with the INSERT
// under it. The tech.created event carries the trace, and the request and
// stored log lines name it.
func TestOneTraceFromFormToRow(t *testing.T) {
	t.Parallel()
	recv := otlpreceiver.Start(t)
	// The worker's per-record stored line is a debug line.
	s := startStack(t, map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": recv.URL, "OTEL_BSP_SCHEDULE_DELAY": "100", "LOG_LEVEL": "debug"})
	events := watchEvents(t, s)
	channel := s.Env("api-server", "REDIS_CHANNEL")

	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noRedirect.PostForm(s.ClientURL+"/techs", url.Values{"text": {"traced " + testenv.Suffix()}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, _ := url.Parse(resp.Header.Get("Location"))
	id := loc.Query().Get("queued")
	if resp.StatusCode != http.StatusSeeOther || !techlist.ValidID(id) {
		t.Fatalf("POST the form: got %s, Location %q", resp.Status, resp.Header.Get("Location"))
	}

	var tr trace
	for deadline := time.Now().Add(testenv.EventuallyLimit); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if tr = traceOf(recv.Spans(), channel, id); tr.complete() {
			break
		}
	}
	tr.check(t)
	t.Logf("the trace, as a trace viewer lays it out (go test -v shows it):\n%s", tr.tree())
	if ev := events(id); !strings.Contains(ev.Traceparent, tr.id) {
		t.Errorf("the tech.created event carries traceparent %q, want one in trace %s", ev.Traceparent, tr.id)
	}
	for name, want := range map[string]string{"api-server": `msg=request`, "worker-server": `msg=stored`} {
		found := false
		for _, line := range strings.Split(s.Logs(t, name), "\n") {
			found = found || (strings.Contains(line, want) && strings.Contains(line, "trace_id="+tr.id))
		}
		if !found {
			t.Errorf("%s: no %s log line with trace_id=%s", name, want, tr.id)
		}
	}
}

// trace is the spans of one POST, found by the tech's id.
type trace struct {
	id                                  string
	publish, process, batch, insert     otlpreceiver.Span
	clientServer, clientCall, apiServer otlpreceiver.Span
	apiRedis                            int
	spans                               []otlpreceiver.Span
}

func traceOf(spans []otlpreceiver.Span, channel, id string) trace {
	var tr trace
	tr.spans = spans
	for _, s := range spans {
		if s.Attrs["messaging.message.id"] != id {
			continue
		}
		switch {
		case s.Service == "api-server" && s.Name == "publish "+channel:
			tr.publish = s
		case s.Service == "worker-server" && s.Name == "process "+channel:
			tr.process = s
		}
	}
	tr.id = tr.publish.TraceID
	for _, s := range spans {
		switch {
		case s.Service == "worker-server" && s.Name == "store batch" && linksTo(s, tr.process.SpanID):
			tr.batch = s
		case tr.id == "" || s.TraceID != tr.id:
		case s.Service == "client-app" && s.Name == "POST /techs":
			tr.clientServer = s
		case s.Service == "client-app" && s.ParentSpanID != "" && strings.HasPrefix(s.Name, "HTTP POST") || s.Service == "client-app" && s.Name == "POST":
			tr.clientCall = s
		case s.Service == "api-server" && s.Name == "POST /api/v1/techs":
			tr.apiServer = s
		case s.Service == "api-server" && s.Attrs["db.system"] == "redis":
			tr.apiRedis++
		}
	}
	for _, s := range spans {
		if tr.batch.SpanID != "" && s.ParentSpanID == tr.batch.SpanID && s.Attrs["db.system"] == "mysql" {
			tr.insert = s
		}
	}
	return tr
}

// names says which of the spans looked for were found.
func (tr trace) names() map[string]bool {
	return map[string]bool{"publish": tr.publish.SpanID != "", "process": tr.process.SpanID != "", "store batch": tr.batch.SpanID != "",
		"insert": tr.insert.SpanID != "", "client-app server": tr.clientServer.SpanID != "",
		"client-app call": tr.clientCall.SpanID != "", "api-server server": tr.apiServer.SpanID != ""}
}

func linksTo(s otlpreceiver.Span, spanID string) bool {
	for _, l := range s.Links {
		if l.SpanID == spanID {
			return true
		}
	}
	return false
}

func (tr trace) complete() bool {
	return tr.publish.SpanID != "" && tr.process.SpanID != "" && tr.batch.SpanID != "" && tr.insert.SpanID != "" &&
		tr.clientServer.SpanID != "" && tr.clientCall.SpanID != "" && tr.apiServer.SpanID != ""
}

func (tr trace) check(t *testing.T) {
	t.Helper()
	if !tr.complete() {
		t.Errorf("not every span of the POST arrived: %+v", tr.names())
	}
	if tr.process.TraceID != tr.id || tr.process.ParentSpanID != tr.publish.SpanID {
		t.Errorf("the worker's process span: trace %s parent %s, want trace %s parent %s (the api-server's publish span)",
			tr.process.TraceID, tr.process.ParentSpanID, tr.id, tr.publish.SpanID)
	}
	if tr.apiServer.ParentSpanID != tr.clientCall.SpanID || tr.clientCall.ParentSpanID != tr.clientServer.SpanID {
		t.Errorf("client-app server %s -> client call %s (parent %s) -> api-server %s (parent %s): want each the parent of the next",
			tr.clientServer.SpanID, tr.clientCall.SpanID, tr.clientCall.ParentSpanID, tr.apiServer.SpanID, tr.apiServer.ParentSpanID)
	}
	if tr.apiRedis == 0 {
		t.Errorf("no Redis command span from the api-server in the trace")
	}
	for _, s := range tr.spans {
		if s.Attrs["db.system"] != "" && s.ParentSpanID == "" {
			t.Errorf("%s: a %s span %q with no parent; background commands must not make root spans", s.Service, s.Attrs["db.system"], s.Name)
			break
		}
	}
	if t.Failed() {
		for _, s := range tr.spans {
			t.Logf("span %s %q trace %s id %s parent %s links %v attrs %v", s.Service, s.Name, s.TraceID, s.SpanID, s.ParentSpanID, s.Links, s.Attrs)
		}
	}
}

// tree lays the trace out as a viewer does: each span under its parent,
// with its start after the trace's first span and its duration; then the
// batch span that stored the row, which has a trace of its own and a link.
func (tr trace) tree() string {
	var b strings.Builder
	children := map[string][]otlpreceiver.Span{}
	var roots []otlpreceiver.Span
	for _, s := range tr.spans {
		switch {
		case s.TraceID != tr.id && s.TraceID != tr.batch.TraceID:
		case s.SpanID == tr.batch.SpanID || s.ParentSpanID == "":
			roots = append(roots, s)
		default:
			children[s.ParentSpanID] = append(children[s.ParentSpanID], s)
		}
	}
	origin := tr.clientServer.Start
	var walk func(s otlpreceiver.Span, depth int)
	walk = func(s otlpreceiver.Span, depth int) {
		fmt.Fprintf(&b, "%-60s %-14s +%7.2f ms %7.2f ms\n", strings.Repeat("  ", depth)+s.Name, s.Service,
			float64(s.Start.Sub(origin).Microseconds())/1000, float64(s.End.Sub(s.Start).Microseconds())/1000)
		kids := children[s.SpanID]
		slices.SortFunc(kids, func(a, b otlpreceiver.Span) int { return a.Start.Compare(b.Start) })
		for _, k := range kids {
			walk(k, depth+1)
		}
	}
	slices.SortFunc(roots, func(a, b otlpreceiver.Span) int { return a.Start.Compare(b.Start) })
	for _, r := range roots {
		if r.SpanID == tr.batch.SpanID {
			b.WriteString("linked from the process span, in a trace of its own:\n")
		}
		walk(r, 0)
	}
	return b.String()
}

// TestTraceparentTravelsWithTracingOff: with no exporter configured, a
// caller's W3C traceparent still goes into the envelope, as the contract
// says (X-Request-Id likewise), so a traced caller's trace can go on.
func TestTraceparentTravelsWithTracingOff(t *testing.T) {
	t.Parallel()
	s := startStack(t, nil)
	rdb := redis.NewClient(redis.Config{Addrs: strings.Split(s.Env("api-server", "REDIS_ADDRS"), ",")})
	defer rdb.Close()
	ps := rdb.Subscribe(context.Background(), s.Env("api-server", "REDIS_CHANNEL"))
	defer ps.Close()
	if _, err := ps.Receive(context.Background()); err != nil { // the confirmation
		t.Fatal(err)
	}
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	req, _ := http.NewRequest(http.MethodPost, s.APIURL+"/api/v1/techs", strings.NewReader(`{"text":"traceparent `+testenv.Suffix()+`"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("traceparent", tp)
	// A legal tracestate of about 8 KB (32 members, 31 of 250
	// characters): the envelope keeps at most 512 characters of it,
	// dropping the long members first, as the W3C spec allows.
	state := []string{"a=1"}
	for i := range 31 {
		key := fmt.Sprint("k", i)
		state = append(state, key+"="+strings.Repeat("v", 250-len(key)-1))
	}
	req.Header.Set("tracestate", strings.Join(state, ","))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST: got %s, want 202", resp.Status)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	msg, err := ps.ReceiveMessage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	env, err := techlist.DecodeEnvelope([]byte(msg.Payload))
	if err != nil || env.Traceparent != tp || env.Tracestate != "a=1" {
		t.Errorf("the envelope %s: traceparent %q, tracestate %q (%v), want %q and a=1", msg.Payload, env.Traceparent, env.Tracestate, err, tp)
	}
	if len(msg.Payload) > 1024 {
		t.Errorf("the envelope is %d bytes, want at most 1024: the tracestate was not bounded", len(msg.Payload))
	}
}
