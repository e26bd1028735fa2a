package mysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/techlist/techlist"
)

// Store runs the queries on one techs table. Every value is a placeholder;
// only the validated table name is written into the SQL, once, here.
type Store struct {
	db    *sqlx.DB
	table string

	listFirst string
	listAfter string
	getOne    string
	insert    string // the INSERT up to its rows
}

// NewStore returns a Store over db for table, a name already checked by
// ConfigFromEnv or Migrate.
func NewStore(db *sqlx.DB, table string) *Store {
	cols := "SELECT id, text, priority, submitted_at, created_at FROM `" + table + "`"
	return &Store{
		db:        db,
		table:     table,
		listFirst: cols + " ORDER BY id DESC LIMIT ?",
		listAfter: cols + " WHERE id < ? ORDER BY id DESC LIMIT ?",
		getOne:    cols + " WHERE id = ?",
		insert:    "INSERT IGNORE INTO `" + table + "` (id, text, priority, submitted_at, created_at) VALUES ",
	}
}

// List returns up to limit techs, newest first, starting after cursor (the
// last id of the previous page; empty for the first page). Ids are
// time-ordered, so ordering by id is ordering by submission.
func (s *Store) List(ctx context.Context, limit int, cursor string) (techlist.Page, error) {
	var rows []techlist.Tech
	var err error
	// One extra row tells whether there is a next page without a COUNT.
	if cursor == "" {
		err = s.db.SelectContext(ctx, &rows, s.listFirst, limit+1)
	} else {
		err = s.db.SelectContext(ctx, &rows, s.listAfter, cursor, limit+1)
	}
	if err != nil {
		return techlist.Page{}, fmt.Errorf("list techs: %w", err)
	}
	page := techlist.Page{Data: rows}
	if len(rows) > limit {
		page.Data = rows[:limit]
		next := page.Data[limit-1].ID
		page.NextCursor = &next
	}
	if page.Data == nil {
		page.Data = []techlist.Tech{}
	}
	for i := range page.Data {
		normalize(&page.Data[i])
	}
	return page, nil
}

// Get returns the tech with id, or an ENotFound error.
func (s *Store) Get(ctx context.Context, id string) (techlist.Tech, error) {
	var t techlist.Tech
	if err := s.db.GetContext(ctx, &t, s.getOne, id); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return techlist.Tech{}, techlist.Errorf(techlist.ENotFound, "no tech with id %s", id)
		}
		return techlist.Tech{}, fmt.Errorf("get tech %s: %w", id, err)
	}
	normalize(&t)
	return t, nil
}

// Insert stores techs with one multi-row statement and returns the rows as
// stored. An id that is already there is left as it was (a message
// delivered twice makes one row), and the returned row for it is the
// first one's.
//
// The statement runs on its own (autocommit): one statement is one
// transaction, all of its rows or none, and a BEGIN and a COMMIT around it
// would only add two round trips per batch. The read-back needs no
// transaction either: a stored row never changes.
func (s *Store) Insert(ctx context.Context, techs []techlist.Tech) ([]techlist.Tech, error) {
	if len(techs) == 0 {
		return nil, nil
	}
	var q strings.Builder
	q.Grow(len(s.insert) + 12*len(techs))
	q.WriteString(s.insert)
	args := make([]any, 0, 5*len(techs))
	for i, t := range techs {
		if i > 0 {
			q.WriteString(",")
		}
		q.WriteString("(?,?,?,?,?)")
		args = append(args, t.ID, t.Text, string(t.Priority), t.SubmittedAt.UTC(), t.CreatedAt.UTC())
	}
	res, err := s.db.ExecContext(ctx, q.String(), args...)
	if err != nil {
		return nil, fmt.Errorf("insert %d techs: %w", len(techs), err)
	}
	if n, err := res.RowsAffected(); err == nil && n == int64(len(techs)) {
		// Every row is new, so the rows as stored are the ones given.
		stored := make([]techlist.Tech, len(techs))
		for i, t := range techs {
			stored[i] = t
			stored[i].CreatedAt = t.CreatedAt.UTC().Truncate(time.Microsecond)
			stored[i].SubmittedAt = t.SubmittedAt.UTC().Truncate(time.Microsecond)
		}
		return stored, nil
	}
	return s.readBack(ctx, techs)
}

// readBack returns the stored rows of techs, some of which were there
// before the insert.
func (s *Store) readBack(ctx context.Context, techs []techlist.Tech) ([]techlist.Tech, error) {
	ids := make([]any, len(techs))
	for i, t := range techs {
		ids[i] = t.ID
	}
	sel := "SELECT id, text, priority, submitted_at, created_at FROM `" + s.table + "` WHERE id IN (?" + strings.Repeat(",?", len(ids)-1) + ") ORDER BY id"
	var stored []techlist.Tech
	if err := s.db.SelectContext(ctx, &stored, sel, ids...); err != nil {
		return nil, fmt.Errorf("read back %d techs: %w", len(techs), err)
	}
	for i := range stored {
		normalize(&stored[i])
	}
	return stored, nil
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.db.PingContext(ctx); err != nil {
		return fmt.Errorf("mysql: %w", err)
	}
	return nil
}

// normalize makes times UTC, at the microsecond precision MySQL keeps, so a
// row reads back equal to what was written.
func normalize(t *techlist.Tech) {
	t.SubmittedAt = t.SubmittedAt.UTC()
	t.CreatedAt = t.CreatedAt.UTC()
}

// Now returns the current time at the precision a DATETIME(6) column keeps.
func Now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

// Close closes the pool.
func (s *Store) Close() error { return s.db.Close() }

// DB returns the pool, for its statistics.
func (s *Store) DB() *sql.DB { return s.db.DB }
