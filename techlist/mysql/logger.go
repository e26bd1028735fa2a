package mysql

import (
	"database/sql"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"

	"github.com/XSAM/otelsql"
	"github.com/go-sql-driver/mysql"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// driverLogger is where the driver's log lines go; nil until
// SetDriverLogger.
var driverLogger atomic.Pointer[slog.Logger]

// SetDriverLogger routes the MySQL driver's own log lines ("packets.go:58
// unexpected EOF", "closing bad idle connection", …), which it otherwise
// prints to standard error as plain text, into logger at warn level, so a
// service with LOG_FORMAT=json writes only JSON. Each service's run calls
// it once, with its logger, before it opens MySQL; the last call wins.
//
// It is package-level because the driver's logging is: mysql.SetLogger
// sets one logger for the process. That hook is a plain variable written
// without synchronisation and read each time a DSN is parsed, so calling
// it while another goroutine opens a pool is a data race (tests run
// services side by side in one process). So it is not called: every pool
// this package opens gets the driver's per-connection Config.Logger,
// which forwards here, and this pointer is atomic.
func SetDriverLogger(logger *slog.Logger) { driverLogger.Store(logger) }

// driverLog is the driver's Logger for every pool opened here.
type driverLog struct{}

func (driverLog) Print(v ...any) {
	logger := driverLogger.Load()
	if logger == nil {
		logger = slog.Default()
	}
	logger.Warn(strings.TrimSpace(fmt.Sprint(v...)), "driver", "mysql")
}

// openDB returns a pool for the driver's connection string dsn, logging
// through driverLog, and tracing each query as a span of tp's when tp is
// set; it connects to nothing yet.
func openDB(dsn string, tp trace.TracerProvider) (*sql.DB, error) {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return nil, err
	}
	cfg.Logger = driverLog{}
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, err
	}
	if tp == nil {
		return sql.OpenDB(conn), nil
	}
	return otelsql.OpenDB(conn, otelsql.WithTracerProvider(tp),
		otelsql.WithAttributes(attribute.String("db.system", "mysql")),
		otelsql.WithSpanOptions(otelsql.SpanOptions{OmitConnResetSession: true, OmitRows: true, OmitConnectorConnect: true})), nil
}
