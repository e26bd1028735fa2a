package mysql

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/golang-migrate/migrate/v4"
	migratemysql "github.com/golang-migrate/migrate/v4/database/mysql"
	"github.com/golang-migrate/migrate/v4/source/iofs"
	"github.com/jmoiron/sqlx"
)

// Open connects to the configured database, creating it first when it does
// not exist and the user may create it, and checks the connection.
// The caller closes the returned pool.
func Open(ctx context.Context, cfg Config) (*sqlx.DB, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	db, err := connect(ctx, cfg, cfg.Database)
	var me *mysql.MySQLError
	if errors.As(err, &me) && me.Number == 1049 { // ER_BAD_DB_ERROR: unknown database
		if err := createDatabase(ctx, cfg); err != nil {
			return nil, err
		}
		db, err = connect(ctx, cfg, cfg.Database)
	}
	if err != nil {
		return nil, fmt.Errorf("mysql %s:%d/%s: %w", cfg.Host, cfg.Port, cfg.Database, err)
	}
	return db, nil
}

// newPool returns a pool for database ("" for none) on the configured
// server, with the limits every pool here has, without connecting.
func newPool(cfg Config, database string) (*sqlx.DB, error) {
	sqldb, err := openDB(cfg.dsn(database, false), cfg.Tracer)
	if err != nil {
		return nil, err
	}
	db := sqlx.NewDb(sqldb, "mysql")
	maxOpen := cfg.MaxOpenConns
	if maxOpen <= 0 {
		maxOpen = 16
	}
	db.SetMaxOpenConns(maxOpen)
	db.SetMaxIdleConns(maxOpen)
	db.SetConnMaxLifetime(30 * time.Minute)
	db.SetConnMaxIdleTime(5 * time.Minute)
	return db, nil
}

// connect returns a pool for database ("" for none) once it answers.
func connect(ctx context.Context, cfg Config, database string) (*sqlx.DB, error) {
	db, err := newPool(cfg, database)
	if err != nil {
		return nil, err
	}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

func createDatabase(ctx context.Context, cfg Config) error {
	db, err := connect(ctx, cfg, "")
	if err != nil {
		return fmt.Errorf("mysql %s:%d: %w", cfg.Host, cfg.Port, err)
	}
	defer db.Close()
	// An identifier cannot be a placeholder; cfg.validate allowed only
	// letters, digits and underscores, so quoting it is safe.
	q := "CREATE DATABASE IF NOT EXISTS `" + cfg.Database + "` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
	if _, err := db.ExecContext(ctx, q); err != nil {
		return fmt.Errorf("create database %s: %w", cfg.Database, err)
	}
	return nil
}

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migrate applies every pending migration to the configured table. It is
// safe to run from several processes at once: the migration library holds a
// database lock (GET_LOCK) while it works, and the others wait for it.
// The migrations' version is kept in a table named after the data table,
// so several tables can share one database.
func Migrate(ctx context.Context, cfg Config) error {
	if err := cfg.validate(); err != nil {
		return err
	}
	src, err := renderMigrations(cfg.Table)
	if err != nil {
		return err
	}
	driver, err := iofs.New(src, ".")
	if err != nil {
		return fmt.Errorf("read migrations: %w", err)
	}
	db, err := openDB(cfg.dsn(cfg.Database, true), nil) // migrations are not traced
	if err != nil {
		return fmt.Errorf("open for migrations: %w", err)
	}
	defer db.Close()
	conn, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("connect for migrations: %w", err)
	}
	target, err := migratemysql.WithConnection(ctx, conn, &migratemysql.Config{
		DatabaseName:    cfg.Database,
		MigrationsTable: cfg.Table + "_schema_migrations",
	})
	if err != nil {
		return fmt.Errorf("prepare migrations: %w", err)
	}
	m, err := migrate.NewWithInstance("iofs", driver, cfg.Database, target)
	if err != nil {
		return fmt.Errorf("prepare migrations: %w", err)
	}
	defer m.Close()
	if err := m.Up(); err != nil && !errors.Is(err, migrate.ErrNoChange) {
		return fmt.Errorf("apply migrations to %s.%s: %w", cfg.Database, cfg.Table, err)
	}
	return nil
}

// renderMigrations returns the embedded migrations with the table name put
// in; the name was validated as a plain identifier.
func renderMigrations(table string) (fs.FS, error) {
	sub, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		return nil, fmt.Errorf("read migrations: %w", err)
	}
	return tableFS{FS: sub, table: table}, nil
}

// tableFS serves migration files with {{table}} replaced as they are read.
type tableFS struct {
	fs.FS
	table string
}

func (t tableFS) Open(name string) (fs.File, error) {
	f, err := t.FS.Open(name)
	if err != nil {
		return nil, err
	}
	info, err := f.Stat()
	if err != nil || info.IsDir() {
		return f, err
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("read migration %s: %w", name, err)
	}
	return renderedFile{Reader: strings.NewReader(strings.ReplaceAll(string(b), "{{table}}", t.table)), info: info}, nil
}

// renderedFile is one migration file after the table name was put in.
type renderedFile struct {
	*strings.Reader
	info fs.FileInfo
}

func (f renderedFile) Stat() (fs.FileInfo, error) { return f.info, nil }
func (f renderedFile) Close() error               { return nil }

// OpenStore opens the pool (creating the database if need be), applies the
// migrations, and returns the Store over the configured table. The caller
// closes it.
func OpenStore(ctx context.Context, cfg Config) (*Store, error) {
	db, err := Open(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if err := Migrate(ctx, cfg); err != nil {
		db.Close()
		return nil, err
	}
	return NewStore(db, cfg.Table), nil
}

// OpenReplica returns a pool for a read replica without connecting: a
// replica that is down must not stop the service, whose reads fall back to
// the primary. It neither creates the database nor migrates: the primary
// does, and replication brings both.
func OpenReplica(cfg Config) (*sqlx.DB, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	db, err := newPool(cfg, cfg.Database)
	if err != nil {
		return nil, fmt.Errorf("mysql replica %s:%d: %w", cfg.Host, cfg.Port, err)
	}
	return db, nil
}
