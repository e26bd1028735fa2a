package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/jmoiron/sqlx"
	goredis "github.com/redis/go-redis/v9"

	"github.com/techlist/techlist/config"
	"github.com/techlist/techlist/mysql"
	"github.com/techlist/techlist/redis"
)

// The miss floor is the least a list miss must do: the same SELECT as the
// api-server's first page and the same Redis write, one after the other,
// over real connections, behind a plain net/http handler answering the
// same bytes. Like the bare server it is this program again, run as its
// own process with -serve-floor (a handler inside the harness shares its
// process with the client, and would be woken more cheaply than a server
// in a process of its own). Set against it, a miss's ratio shows what the
// api-server adds beyond the unavoidable work: its cache read, encoding
// the page, the generation check.

// floorHandler answers body after the SELECT of limit+1 rows (as the store
// asks one row more, to tell whether a next page exists), the rows scanned
// into Go values, and one HSET of body into key.
type floorHandler struct {
	db    *sqlx.DB
	rdb   goredis.UniversalClient
	query string
	limit int
	key   string
	body  []byte
}

func (h *floorHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := h.work(r.Context()); err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", "application/json")
	hd.Set("Content-Length", strconv.Itoa(len(h.body)))
	hd.Set("X-Cache", "MISS")
	w.WriteHeader(http.StatusOK)
	w.Write(h.body)
}

func (h *floorHandler) work(ctx context.Context) error {
	rows, err := h.db.QueryContext(ctx, h.query, h.limit+1)
	if err != nil {
		return fmt.Errorf("floor select: %w", err)
	}
	defer rows.Close()
	var id, text, priority string
	var submitted, created time.Time
	for rows.Next() {
		if err := rows.Scan(&id, &text, &priority, &submitted, &created); err != nil {
			return fmt.Errorf("floor scan: %w", err)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("floor rows: %w", err)
	}
	if err := h.rdb.HSet(ctx, h.key, strconv.Itoa(h.limit)+":", h.body).Err(); err != nil {
		return fmt.Errorf("floor write: %w", err)
	}
	return nil
}

// serveFloor serves the floor on PORT until ctx ends, with MySQL and
// Redis found through the services' variables, as the harness gives them.
func serveFloor(ctx context.Context, bodyFile string, getenv func(string) string, stdout io.Writer) error {
	body, err := os.ReadFile(bodyFile)
	if err != nil {
		return err
	}
	env := config.NewEnv(getenv)
	mcfg, rcfg, prefix := mysql.ConfigFromEnv(env), redis.ConfigFromEnv(env), env.String("REDIS_CACHE", "techlist")
	if err := env.Err(); err != nil {
		return err
	}
	db, err := mysql.Open(ctx, mcfg)
	if err != nil {
		return err
	}
	defer db.Close()
	rdb := redis.NewClient(rcfg)
	defer rdb.Close()
	h := &floorHandler{
		db: db, rdb: rdb, limit: 50, key: prefix + ":floor", body: body,
		query: "SELECT id, text, priority, submitted_at, created_at FROM `" + mcfg.Table + "` ORDER BY id DESC LIMIT ?",
	}
	return serveUntilDone(ctx, h, stdout)
}

// startFloor starts the floor, answering body; it answers once start
// returns.
func (w *world) startFloor(body []byte) (*process, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	f, err := w.bodyFile(body)
	if err != nil {
		return nil, err
	}
	return w.start("floor", self, []string{"-serve-floor", "-bare-body", f}, w.serviceEnv(nil))
}
