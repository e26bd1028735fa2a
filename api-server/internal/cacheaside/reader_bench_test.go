package cacheaside_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/techlist/techlist"

	"github.com/techlist/api-server/internal/cacheaside"
)

// hitCache answers every lookup from memory: the Redis round trip is left
// out, so what is measured is the reader's own work on a hit.
type hitCache struct {
	page []byte
	tech []byte
}

func (c hitCache) Page(context.Context, string) ([]byte, string, bool, error) {
	return c.page, "1", false, nil
}

func (c hitCache) SetPage(context.Context, string, []byte, string) (bool, error) { return true, nil }

func (c hitCache) Tech(context.Context, string) ([]byte, error) { return c.tech, nil }

func (c hitCache) SetTech(context.Context, string, []byte) error { return nil }

func (c hitCache) Pending(context.Context, string) (bool, error) { return false, nil }

// noStore fails the benchmark if a hit ever reaches MySQL.
type noStore struct{ b *testing.B }

func (s noStore) List(context.Context, int, string) (techlist.Page, error) {
	s.b.Fatal("a cache hit read MySQL")
	return techlist.Page{}, nil
}

func (s noStore) Get(context.Context, string) (techlist.Tech, error) {
	s.b.Fatal("a cache hit read MySQL")
	return techlist.Tech{}, nil
}

// benchPage is the JSON of a first page of 50 techs, as the api-server
// caches it.
func benchPage(b *testing.B) []byte {
	b.Helper()
	page := techlist.Page{Data: make([]techlist.Tech, 50)}
	at := time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)
	for i := range page.Data {
		page.Data[i] = techlist.Tech{ID: "01890a5d-ac96-774b-bcce-b302099a8057", Text: "Redis Streams with consumer groups",
			Priority: techlist.PriorityMedium, SubmittedAt: at, CreatedAt: at}
	}
	next := page.Data[49].ID
	page.NextCursor = &next
	v, err := json.Marshal(page)
	if err != nil {
		b.Fatal(err)
	}
	return v
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// BenchmarkListHit is a list read answered by Redis (here a fake that
// answers at once), with no in-process tier.
func BenchmarkListHit(b *testing.B) {
	r := cacheaside.NewReader(hitCache{page: benchPage(b)}, noStore{b}, nil, quiet(), nil)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, status, err := r.List(ctx, 50, ""); err != nil || status != cacheaside.Hit {
			b.Fatalf("got %q, %v; want a hit", status, err)
		}
	}
}

// BenchmarkListLocalHit is a list read answered by the in-process tier.
func BenchmarkListLocalHit(b *testing.B) {
	r := cacheaside.NewReader(hitCache{page: benchPage(b)}, noStore{b}, cacheaside.NewLocal(time.Minute, 1000), quiet(), nil)
	ctx := context.Background()
	if _, _, err := r.List(ctx, 50, ""); err != nil { // fills the tier
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, status, err := r.List(ctx, 50, ""); err != nil || status != cacheaside.Hit {
			b.Fatalf("got %q, %v; want a hit", status, err)
		}
	}
}

// BenchmarkTechHit is a read of one stored tech answered by Redis.
func BenchmarkTechHit(b *testing.B) {
	tech := []byte(`{"id":"01890a5d-ac96-774b-bcce-b302099a8057","text":"Redis Streams","priority":"low","created_at":"2026-01-02T03:04:05.000006Z","submitted_at":"2026-01-02T03:04:05.000006Z"}`)
	r := cacheaside.NewReader(hitCache{tech: tech}, noStore{b}, nil, quiet(), nil)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if res, err := r.Tech(ctx, "01890a5d-ac96-774b-bcce-b302099a8057"); err != nil || res.Status != cacheaside.Hit {
			b.Fatalf("got %q, %v; want a hit", res.Status, err)
		}
	}
}
