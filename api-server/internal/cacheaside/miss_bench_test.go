package cacheaside_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/techlist/techlist"
	"github.com/techlist/techlist/mysql"
	"github.com/techlist/techlist/redis"
	"github.com/techlist/techlist/testenv"

	"github.com/techlist/api-server/internal/cacheaside"
)

// BenchmarkListMissReal is a list miss on the real Redis and MySQL: the
// worker's invalidation, then the read of the first page of 50 of 1,000
// techs, which queries MySQL and fills Redis. Its CPU profile shows what
// a miss costs the api-server beyond the round trips.
func BenchmarkListMissReal(b *testing.B) {
	rdb, names := testenv.Redis(b)
	cfg, db := testenv.MySQL(b)
	ctx := context.Background()
	store := mysql.NewStore(db, cfg.Table)
	now := mysql.Now()
	for i := range 2 {
		batch := make([]techlist.Tech, 500)
		for j := range batch {
			batch[j] = techlist.Tech{ID: fmt.Sprintf("01890a5d-ac96-774b-bcce-%012d", i*500+j), Text: fmt.Sprintf("seeded tech %d", j),
				Priority: techlist.PriorityMedium, SubmittedAt: now, CreatedAt: now}
		}
		if _, err := store.Insert(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
	cache := redis.NewCache(rdb, names.Prefix, time.Minute)
	r := cacheaside.NewReader(cache, store, nil, quiet(), nil)
	b.ReportAllocs()
	for b.Loop() {
		if err := cache.InvalidateLists(ctx); err != nil {
			b.Fatal(err)
		}
		if _, status, err := r.List(ctx, 50, ""); err != nil || status != cacheaside.Miss {
			b.Fatalf("got %q, %v; want a miss", status, err)
		}
	}
}
