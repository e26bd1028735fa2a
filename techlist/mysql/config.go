// Package mysql stores techs in MySQL (or MariaDB, or Vitess): opening the
// pool, creating the database, applying the versioned migrations, and the
// queries the two servers run.
package mysql

import (
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/techlist/techlist/config"
	"go.opentelemetry.io/otel/trace"
)

// Config says where the techs live.
type Config struct {
	Host     string
	Port     int
	User     string
	Password string
	Database string
	Table    string

	// MaxOpenConns bounds the pool; 0 means the default of 16.
	MaxOpenConns int
	// Tracer, when set, traces each query as a span (nil: none, at no cost).
	Tracer trace.TracerProvider
}

// ConfigFromEnv reads the contract's MYSQL_* variables.
func ConfigFromEnv(env *config.Env) Config {
	return Config{
		Host:         env.String("MYSQL_HOST", "127.0.0.1"),
		Port:         env.Int("MYSQL_PORT", 3306, 1, 65535),
		User:         env.String("MYSQL_USERNAME", "root"),
		Password:     env.Raw("MYSQL_PASSWORD", ""),
		Database:     env.Identifier("MYSQL_DATABASE", "projectdb"),
		Table:        env.Identifier("MYSQL_TABLE", "techlist"),
		MaxOpenConns: env.Int("MYSQL_MAX_OPEN_CONNS", 16, 1, 1000),
	}
}

// dsn returns the driver's connection string for database (empty for none).
func (c Config) dsn(database string, multiStatements bool) string {
	d := mysql.NewConfig()
	d.User = c.User
	d.Passwd = c.Password
	d.Net = "tcp"
	d.Addr = net.JoinHostPort(c.Host, strconv.Itoa(c.Port))
	d.DBName = database
	d.ParseTime = true
	d.Loc = time.UTC
	d.Timeout = 5 * time.Second
	d.ReadTimeout = 30 * time.Second
	d.WriteTimeout = 30 * time.Second
	d.MultiStatements = multiStatements
	// Placeholders are filled in by the driver (safely, for utf8mb4), so a
	// query is one round trip instead of prepare, execute and close.
	d.InterpolateParams = !multiStatements
	// Every text is utf8mb4 so emoji and any other code point round-trip.
	d.Params = map[string]string{"charset": "utf8mb4"}
	d.Collation = "utf8mb4_bin"
	return d.FormatDSN()
}

func (c Config) validate() error {
	if !config.ValidIdentifier(c.Database) {
		return fmt.Errorf("invalid database name %q", c.Database)
	}
	if !config.ValidIdentifier(c.Table) {
		return fmt.Errorf("invalid table name %q", c.Table)
	}
	return nil
}

// ReplicaConfigFromEnv reads MYSQL_READ_HOST and friends: a read replica
// of primary, with the same database and table. MYSQL_READ_PORT,
// MYSQL_READ_USERNAME and MYSQL_READ_PASSWORD default to the primary's.
// ok is false when MYSQL_READ_HOST is empty: no replica.
func ReplicaConfigFromEnv(env *config.Env, primary Config) (cfg Config, ok bool) {
	host := env.String("MYSQL_READ_HOST", "")
	cfg = primary
	cfg.Host = host
	cfg.Port = env.Int("MYSQL_READ_PORT", primary.Port, 1, 65535)
	cfg.User = env.String("MYSQL_READ_USERNAME", primary.User)
	cfg.Password = env.Raw("MYSQL_READ_PASSWORD", primary.Password)
	return cfg, host != ""
}
