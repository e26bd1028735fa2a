package httpapi

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/techlist/api-server/internal/cacheaside"
	"github.com/techlist/techlist"
)

// The api-server's own cost per request, routing, middleware and handler,
// over the production logger (JSON) and metrics, with Redis left out: a
// cached page answered as bytes, and a POST whose envelope is encoded and
// dropped. The bench harness (bench/) measures the real program over the
// network; these say where the program's own share goes.

type benchReader struct{ page []byte }

func (r benchReader) List(context.Context, int, string) ([]byte, cacheaside.Status, error) {
	return r.page, cacheaside.Hit, nil
}

func (benchReader) Tech(context.Context, string) (cacheaside.TechResult, error) {
	return cacheaside.TechResult{}, nil
}

type encodingPublisher struct{}

func (encodingPublisher) Publish(_ context.Context, env techlist.Envelope) error {
	_, err := env.Encode()
	return err
}

func benchServer(b *testing.B) http.Handler {
	reg := prometheus.NewRegistry()
	return NewServer(Config{CORSOrigins: []string{"http://localhost:3000"}, MaxBodyBytes: testMaxBody,
		PublishRetry: time.Second, MaxInFlight: 256}, Deps{
		Logger:      slog.New(slog.NewJSONHandler(io.Discard, nil)),
		Reader:      benchReader{page: []byte(`{"data":[` + strings.Repeat(`{"id":"x"},`, 800) + `{}],"next_cursor":null,"cached":true}`)},
		Publisher:   encodingPublisher{},
		Pending:     &fakePending{},
		Idempotency: &fakeIdempotency{},
		Metrics:     NewMetrics(reg),
		Gatherer:    reg,
		NewID: func() (string, error) {
			id, err := uuid.NewV7()
			return id.String(), err
		},
		Now: time.Now,
	})
}

// discardWriter is a ResponseWriter that keeps nothing, as a connection's
// buffered writer would send it on.
type discardWriter struct {
	h      http.Header
	status int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(status int)      { w.status = status }

// benchServe serves a shallow copy of base for each request (the server
// reads its headers and replaces, never changes, the rest), with body.
func benchServe(b *testing.B, base *http.Request, body []byte, want int) {
	h := benchServer(b)
	b.ReportAllocs()
	w := &discardWriter{h: http.Header{}}
	for b.Loop() {
		clear(w.h)
		r := *base
		if body != nil {
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		h.ServeHTTP(w, &r)
	}
	if w.status != want {
		b.Fatalf("%s %s answered %d, want %d", base.Method, base.URL, w.status, want)
	}
}

func BenchmarkServeCachedList(b *testing.B) {
	benchServe(b, httptest.NewRequest(http.MethodGet, "/api/v1/techs", nil), nil, http.StatusOK)
}

func BenchmarkServeCreate(b *testing.B) {
	r := httptest.NewRequest(http.MethodPost, "/api/v1/techs", nil)
	r.Header.Set("Content-Type", "application/json")
	benchServe(b, r, []byte(`{"text":"Redis Streams with consumer groups"}`), http.StatusAccepted)
}
