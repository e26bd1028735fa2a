package mysql_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/techlist/techlist"
	"github.com/techlist/techlist/mysql"
	"github.com/techlist/techlist/testenv"
)

func newTech(t *testing.T, text string) techlist.Tech {
	t.Helper()
	id, err := uuid.NewV7()
	if err != nil {
		t.Fatal(err)
	}
	now := mysql.Now()
	return techlist.Tech{ID: id.String(), Text: text, Priority: techlist.PriorityMedium, SubmittedAt: now, CreatedAt: now}
}

func TestOpenCreatesDatabaseAndMigrateIsIdempotent(t *testing.T) {
	t.Parallel()
	cfg := testenv.MySQLConfig(t)
	ctx := context.Background()
	db, err := mysql.Open(ctx, cfg)
	if err != nil {
		t.Fatalf("Open on a missing database: %v", err)
	}
	defer db.Close()
	// Several processes starting at once all migrate; the lock makes that safe.
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- mysql.Migrate(ctx, cfg)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("concurrent Migrate: %v", err)
		}
	}
	if err := mysql.Migrate(ctx, cfg); err != nil {
		t.Errorf("Migrate again: %v", err)
	}
	var n int
	if err := db.GetContext(ctx, &n, "SELECT COUNT(*) FROM `"+cfg.Table+"`"); err != nil {
		t.Fatalf("table not created: %v", err)
	}
}

func TestInsertIsIdempotentAndVerbatim(t *testing.T) {
	t.Parallel()
	cfg, db := testenv.MySQL(t)
	store := mysql.NewStore(db, cfg.Table)
	ctx := context.Background()

	texts := []string{
		"Go", "O'Reilly \"quoted\" \\ backslash", "'; DROP TABLE techlist; --",
		"<script>alert(1)</script>", "emoji 🚀👩‍💻", "עברית right-to-left", "日本語",
	}
	var techs []techlist.Tech
	for _, s := range texts {
		techs = append(techs, newTech(t, s))
	}
	stored, err := store.Insert(ctx, techs)
	if err != nil {
		t.Fatalf("Insert: %v", err)
	}
	if len(stored) != len(techs) {
		t.Fatalf("Insert returned %d rows, want %d", len(stored), len(techs))
	}
	// The same ids again, with other values: nothing changes.
	again := make([]techlist.Tech, len(techs))
	copy(again, techs)
	for i := range again {
		again[i].Text = "changed"
		again[i].CreatedAt = again[i].CreatedAt.Add(time.Hour)
	}
	stored2, err := store.Insert(ctx, again)
	if err != nil {
		t.Fatalf("Insert again: %v", err)
	}
	for _, want := range techs {
		got, err := store.Get(ctx, want.ID)
		if err != nil {
			t.Fatalf("Get %s: %v", want.ID, err)
		}
		if got != want {
			t.Errorf("Get: got %+v, want %+v", got, want)
		}
	}
	for _, got := range stored2 {
		if got.Text == "changed" {
			t.Errorf("second Insert returned the new values %+v, want the stored ones", got)
		}
	}
	var n int
	if err := db.GetContext(ctx, &n, "SELECT COUNT(*) FROM `"+cfg.Table+"`"); err != nil {
		t.Fatal(err)
	}
	if n != len(texts) {
		t.Errorf("rows: got %d, want %d", n, len(texts))
	}
}

func TestGetUnknownIsNotFound(t *testing.T) {
	t.Parallel()
	cfg, db := testenv.MySQL(t)
	store := mysql.NewStore(db, cfg.Table)
	_, err := store.Get(context.Background(), "00000000-0000-7000-8000-000000000000")
	if code := techlist.ErrorCode(err); code != techlist.ENotFound {
		t.Errorf("got code %q (%v), want %q", code, err, techlist.ENotFound)
	}
}

func TestListPagesNewestFirst(t *testing.T) {
	t.Parallel()
	cfg, db := testenv.MySQL(t)
	store := mysql.NewStore(db, cfg.Table)
	ctx := context.Background()
	var techs []techlist.Tech
	for i := range 7 {
		techs = append(techs, newTech(t, fmt.Sprintf("tech %d", i)))
	}
	if _, err := store.Insert(ctx, techs); err != nil {
		t.Fatal(err)
	}
	var got []string
	cursor := ""
	pages := 0
	for {
		page, err := store.List(ctx, 3, cursor)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, tech := range page.Data {
			got = append(got, tech.Text)
		}
		if page.NextCursor == nil {
			break
		}
		cursor = *page.NextCursor
	}
	want := []string{"tech 6", "tech 5", "tech 4", "tech 3", "tech 2", "tech 1", "tech 0"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if pages != 3 {
		t.Errorf("pages: got %d, want 3", pages)
	}
	empty, err := store.List(ctx, 3, techs[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(empty.Data) != 0 || empty.NextCursor != nil || empty.Data == nil {
		t.Errorf("after the oldest: got %+v, want an empty non-nil page", empty)
	}
}

func TestOpenRejectsBadNames(t *testing.T) {
	_, err := mysql.Open(context.Background(), mysql.Config{Host: "127.0.0.1", Port: 3306, User: "root", Database: "x`; DROP", Table: "t"})
	if err == nil {
		t.Fatal("Open with a hostile database name: got nil error")
	}
	var e *techlist.Error
	if errors.As(err, &e) {
		t.Errorf("got a client error %v, want a configuration error", err)
	}
}
