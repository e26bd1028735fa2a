package mysql_test

import (
	"context"
	"testing"

	"github.com/google/uuid"
	"github.com/techlist/techlist"
	"github.com/techlist/techlist/mysql"
	"github.com/techlist/techlist/testenv"
)

// BenchmarkInsert100 is the worker's batch write on the real database: one
// Store.Insert of 100 new rows (the default BATCH_SIZE), which builds the
// multi-row statement, runs it in a transaction and reads the rows back.
// It skips when MySQL is not reachable.
func BenchmarkInsert100(b *testing.B) {
	const rows = 100
	cfg, db := testenv.MySQL(b)
	store := mysql.NewStore(db, cfg.Table)
	ctx := context.Background()
	batch := make([]techlist.Tech, rows)
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		now := mysql.Now()
		for i := range batch {
			id, err := uuid.NewV7()
			if err != nil {
				b.Fatal(err)
			}
			batch[i] = techlist.Tech{ID: id.String(), Text: "Redis Streams with consumer groups",
				Priority: techlist.PriorityMedium, SubmittedAt: now, CreatedAt: now}
		}
		b.StartTimer()
		stored, err := store.Insert(ctx, batch)
		if err != nil {
			b.Fatal(err)
		}
		if len(stored) != rows {
			b.Fatalf("got %d rows back, want %d", len(stored), rows)
		}
	}
	b.ReportMetric(float64(b.N*rows)/b.Elapsed().Seconds(), "rows/s")
}
