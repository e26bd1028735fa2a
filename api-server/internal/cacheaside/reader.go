// Package cacheaside reads techs through the Redis cache over MySQL: look in
// the cache, on a miss read the database and fill the cache. A Redis outage
// degrades to reading MySQL directly; only a MySQL outage fails a read, and
// a read of one tech that MySQL does not have while Redis cannot say
// whether it is pending (that answer would be a guess).
package cacheaside

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/techlist/techlist"
)

// Status says where a read was served from; it is the X-Cache header.
type Status string

const (
	Hit    Status = "HIT"    // from Redis, or from memory (the in-process tier, a page just read)
	Miss   Status = "MISS"   // from MySQL; the cache is filled after the answer
	Bypass Status = "BYPASS" // from MySQL because Redis did not answer
)

// Cache is the part of the Redis cache the reader uses.
type Cache interface {
	// Page's stale says the page is past its soft deadline: it is served,
	// and refreshed in the background. Past its hard deadline it is a miss.
	Page(ctx context.Context, field string) (val []byte, gen string, stale bool, err error)
	SetPage(ctx context.Context, field string, val []byte, gen string) (bool, error)
	Tech(ctx context.Context, id string) ([]byte, error)
	SetTech(ctx context.Context, id string, val []byte) error
	Pending(ctx context.Context, id string) (bool, error)
}

// Store is the part of MySQL the reader uses.
type Store interface {
	List(ctx context.Context, limit int, cursor string) (techlist.Page, error)
	Get(ctx context.Context, id string) (techlist.Tech, error)
}

// Observer counts reads by status; nil is allowed.
type Observer interface {
	CacheResult(kind string, status Status)
}

// Reader serves reads cache-aside.
type Reader struct {
	cache  Cache
	store  Store
	logger *slog.Logger
	obs    Observer
	// Concurrent misses of one page share one MySQL query (misses), as do
	// the reads of one tech and the refreshes of one page (flight).
	misses missFlight
	flight singleflight.Group
	local  *Local
	// replica, when set, is a MySQL read replica: see UseReplica.
	replica Store
	// absent remembers unknown ids briefly, sparing MySQL repeated reads.
	absent *Absent
	// refreshFailing is set from a failed refresh until one succeeds, so a
	// failing MySQL is logged once, not once per stale read.
	refreshFailing atomic.Bool
	// listQueries counts the list queries sent to MySQL (primary or replica).
	listQueries atomic.Uint64
}

const (
	// absentTTL is how long an unknown id is answered 404 without asking
	// MySQL, and absentEntries how many such ids one process remembers.
	absentTTL     = 5 * time.Second
	absentEntries = 10_000
	// refreshTimeout bounds a background refresh, which no request waits on.
	refreshTimeout = 10 * time.Second
	// pageReadTimeout bounds a shared read of a page from Redis.
	pageReadTimeout = 5 * time.Second
)

// UseReplica makes the reader read from a MySQL replica where a replica's
// lag cannot leave a stale page in the cache: reads while Redis is down
// (BYPASS), and single techs (a row never changes; one the replica does
// not have yet is looked for on the primary). A list read that fills the
// cache reads the primary, so the cache never keeps a page older than the
// write that invalidated it. Any replica error falls back to the primary.
func (r *Reader) UseReplica(replica Store) { r.replica = replica }

// NewReader returns a Reader over cache and store. local, the in-process
// tier for list pages, may be nil.
func NewReader(cache Cache, store Store, local *Local, logger *slog.Logger, obs Observer) *Reader {
	return &Reader{
		cache: cache, store: store, local: local, logger: logger, obs: obs,
		absent: NewAbsent(absentTTL, absentEntries),
	}
}

func (r *Reader) observe(kind string, s Status) {
	if r.obs != nil {
		r.obs.CacheResult(kind, s)
	}
}

// List returns one page of the newest-first list, and where it came from.
// The bytes are the JSON of a techlist.Page with "cached":true added, the
// answer to a cache hit; PageJSON gives the answer for any status.
func (r *Reader) List(ctx context.Context, limit int, cursor string) ([]byte, Status, error) {
	field := strconv.Itoa(limit) + ":" + cursor
	var localGen uint64
	if r.local != nil {
		if b, ok := r.local.Get(field); ok {
			r.observe("list", Hit)
			return b, Hit, nil
		}
		localGen = r.local.Gen()
	}
	// A second look at Redis only when a fill landed while the first was
	// under way: the page may be there now (see missFlight.do).
	for look := 0; ; look++ {
		fills := r.misses.fills()
		cached, gen, stale, err := r.cachedPage(ctx, field, localGen, look == 0)
		if err := clientLeft(ctx, "read list page"); err != nil {
			return nil, "", err
		}
		if err != nil {
			r.logger.WarnContext(ctx, "cache unavailable, reading MySQL", "err", err)
			b, err := r.listFromStore(ctx, limit, cursor, true)
			if err != nil {
				return nil, "", err
			}
			r.observe("list", Bypass)
			return b, Bypass, nil
		}
		if cached != nil {
			r.keepLocal(field, cached, localGen)
			if stale {
				r.refresh(ctx, field, limit, cursor, gen)
			}
			r.observe("list", Hit)
			return cached, Hit, nil
		}
		if look > 0 {
			fills = lookedAgain
		}
		b, status, again, err := r.listMiss(ctx, field, limit, cursor, gen, localGen, fills)
		if again {
			continue
		}
		if err != nil {
			return nil, "", err
		}
		r.observe("list", status)
		return b, status, nil
	}
}

// clientLeft returns, when the request's client has gone, the error to
// answer with instead of a failed cache read's: the read failed because
// the request ended, Redis is not down, and nothing should warn or fall
// back to MySQL. It returns nil while the client is there.
func clientLeft(ctx context.Context, what string) error {
	if ctx.Err() == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", what, ctx.Err())
}

// cachedPage reads a page from Redis. With the in-process tier, the
// readers that found it without the page at the same generation of the
// tier share one read (when share is set): each tech.created drops the
// tier, and every reader in flight then fetched the same page from Redis
// (at 1,000 POSTs a second, about 100 drops a second, each followed by up
// to one read per open connection). A shared read began after the drop
// its readers saw, so it is as fresh as what the tier would have served
// them; a reader after the next drop sees a new generation and a read of
// its own.
func (r *Reader) cachedPage(ctx context.Context, field string, localGen uint64, share bool) (val []byte, gen string, stale bool, err error) {
	if r.local == nil || !share {
		return r.cache.Page(ctx, field)
	}
	ch := r.flight.DoChan("page\x00"+field+"@"+strconv.FormatUint(localGen, 10), func() (any, error) {
		// The read outlives a reader that leaves; the others wait on it.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), pageReadTimeout)
		defer cancel()
		val, gen, stale, err := r.cache.Page(ctx, field)
		return sharedPage{val, gen, stale}, err
	})
	select {
	case res := <-ch:
		p, _ := res.Val.(sharedPage)
		return p.val, p.gen, p.stale, res.Err
	case <-ctx.Done():
		return nil, "", false, ctx.Err()
	}
}

type sharedPage struct {
	val   []byte
	gen   string
	stale bool
}

// listMiss reads the page from MySQL, shared with the concurrent misses of
// the same page and generation, and fills the cache (see missFlight.do).
func (r *Reader) listMiss(ctx context.Context, field string, limit int, cursor, gen string, localGen, fills uint64) ([]byte, Status, bool, error) {
	return r.misses.do(ctx, field+"@"+gen, fills, func(ctx context.Context) ([]byte, error) {
		return r.listFromStore(ctx, limit, cursor, false)
	}, func(ctx context.Context, b []byte) {
		stored, err := r.cache.SetPage(ctx, field, b, gen)
		if err != nil {
			r.logger.WarnContext(ctx, "cache fill failed", "err", err)
		}
		if stored {
			r.keepLocal(field, b, localGen)
		}
	})
}

// refresh fills a stale page again in the background, one refresh at a
// time per page and generation in this process, while the stale page is
// served: an expiry then never turns into a burst of misses.
func (r *Reader) refresh(ctx context.Context, field string, limit int, cursor, gen string) {
	// DoChan runs the refresh in its own goroutine, which ends with it;
	// nobody waits on the channel.
	r.flight.DoChan("refresh\x00"+field+"@"+gen, func() (any, error) {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), refreshTimeout)
		defer cancel()
		return nil, r.refill(ctx, field, limit, cursor, gen)
	})
}

// refill queries MySQL for a stale page and caches it again. It first
// looks again: a reader that saw the page stale just before another
// refresh landed finds it fresh and spends no query; an invalidation
// meanwhile leaves the page to the next miss.
func (r *Reader) refill(ctx context.Context, field string, limit int, cursor, gen string) error {
	val, g, stale, err := r.cache.Page(ctx, field)
	if err != nil || g != gen || val == nil || !stale {
		return err
	}
	var localGen uint64
	if r.local != nil {
		localGen = r.local.Gen()
	}
	b, err := r.listFromStore(ctx, limit, cursor, false)
	if err == nil {
		var stored bool
		if stored, err = r.cache.SetPage(ctx, field, b, gen); stored {
			r.keepLocal(field, b, localGen)
		}
	}
	if err != nil {
		if !r.refreshFailing.Swap(true) {
			r.logger.WarnContext(ctx, "cache refresh failed; stale pages are served until they expire", "err", err)
		}
		return err
	}
	if r.refreshFailing.Swap(false) {
		r.logger.InfoContext(ctx, "cache refresh works again")
	}
	return nil
}

// ListQueries returns how many list queries the reader sent to MySQL.
func (r *Reader) ListQueries() uint64 { return r.listQueries.Load() }

// keepLocal puts a page read from Redis, or just filled there, in the
// in-process tier.
func (r *Reader) keepLocal(field string, b []byte, gen uint64) {
	if r.local != nil {
		r.local.Set(field, b, gen)
	}
}

func (r *Reader) listFromStore(ctx context.Context, limit int, cursor string, replicaOK bool) ([]byte, error) {
	var page techlist.Page
	var err error
	r.listQueries.Add(1)
	if replicaOK && r.replica != nil {
		page, err = r.replica.List(ctx, limit, cursor)
	}
	if !replicaOK || r.replica == nil || err != nil {
		if replicaOK && r.replica != nil {
			r.listQueries.Add(1) // the replica failed: a second query
		}
		page, err = r.store.List(ctx, limit, cursor)
	}
	if err != nil {
		return nil, techlist.Unavailable(err, "the database is unavailable; try again shortly")
	}
	// Kept in the form a cache hit is answered with, so a hit is written
	// as it is, in one piece; see PageJSON.
	b, err := techlist.AppendCachedPage(make([]byte, 0, 256+192*len(page.Data)), page)
	if err != nil {
		return nil, fmt.Errorf("encode page: %w", err)
	}
	return b, nil
}

const cachedSuffix = techlist.CachedPageSuffix

// PageJSON turns what List returns, {"data":…,"next_cursor":…,"cached":true},
// into the answer for status: as it is for a HIT, with "cached":false
// otherwise. A page cached without the flag (by an older version) gets it.
func PageJSON(b []byte, status Status) []byte {
	flag := `,"cached":false}`
	if status == Hit {
		flag = cachedSuffix
	}
	if bytes.HasSuffix(b, []byte(cachedSuffix)) {
		if status == Hit {
			return b
		}
		b = b[:len(b)-len(cachedSuffix)]
	} else {
		b = b[:len(b)-1] // the object's closing brace
	}
	out := make([]byte, 0, len(b)+len(flag))
	return append(append(out, b...), flag...)
}

// get reads one tech from the replica, or from the primary when the
// replica fails or does not have it (yet).
func (r *Reader) get(ctx context.Context, id string) (techlist.Tech, error) {
	if r.replica != nil {
		if t, err := r.replica.Get(ctx, id); err == nil {
			return t, nil
		}
	}
	return r.store.Get(ctx, id)
}

// TechResult is a read of one tech: its JSON, or Pending when it was
// accepted and is not stored yet.
type TechResult struct {
	JSON    []byte
	Pending bool
	Status  Status
}

// Tech reads one tech. An id that is neither stored nor pending is an
// ENotFound error; one that is not stored while Redis cannot say whether
// it is pending is an EUnavailable error.
//
// The pending mark is read before MySQL: the worker commits the row and
// only then clears the mark, so "not pending, then not in MySQL" can only
// mean unknown. (Read the other way round, a commit between the two reads
// made an accepted tech answer 404.)
func (r *Reader) Tech(ctx context.Context, id string) (TechResult, error) {
	cached, err := r.cache.Tech(ctx, id)
	if err != nil {
		if err := clientLeft(ctx, "read tech"); err != nil {
			return TechResult{}, err
		}
		r.logger.WarnContext(ctx, "cache unavailable, reading MySQL", "err", err)
		return r.storedOrCannotTell(ctx, id, Bypass, err)
	}
	if cached != nil {
		r.observe("tech", Hit)
		return TechResult{JSON: cached, Status: Hit}, nil
	}
	pending, err := r.cache.Pending(ctx, id)
	if err != nil {
		if err := clientLeft(ctx, "read pending mark"); err != nil {
			return TechResult{}, err
		}
		r.logger.WarnContext(ctx, "cache unavailable, cannot check pending", "err", err)
		return r.storedOrCannotTell(ctx, id, Miss, err)
	}
	if pending {
		res, err := r.storedTech(ctx, id, Miss)
		if techlist.ErrorCode(err) == techlist.ENotFound {
			return TechResult{Pending: true, Status: Miss}, nil
		}
		return res, err // stored wins over a mark not cleared yet
	}
	// Not pending: unknown unless stored. Only here may the brief memory
	// of unknown ids answer, and concurrent reads share one query.
	if r.absent.Has(id) {
		return TechResult{}, techlist.Errorf(techlist.ENotFound, "no tech with id %s", id)
	}
	v, err, _ := r.flight.Do("tech\x00"+id, func() (any, error) {
		res, err := r.storedTech(context.WithoutCancel(ctx), id, Miss)
		if techlist.ErrorCode(err) == techlist.ENotFound {
			r.absent.Add(id)
		}
		return res, err
	})
	if err != nil {
		return TechResult{}, err
	}
	return v.(TechResult), nil
}

// storedOrCannotTell reads one tech from MySQL when its pending mark could
// not be read (cacheErr). Stored, it is answered; not stored, nobody can
// tell pending from unknown, so the answer is EUnavailable, never
// ENotFound: a 404 would tell a client that an accepted tech was lost.
func (r *Reader) storedOrCannotTell(ctx context.Context, id string, status Status, cacheErr error) (TechResult, error) {
	res, err := r.storedTech(ctx, id, status)
	if techlist.ErrorCode(err) == techlist.ENotFound {
		return TechResult{}, techlist.Unavailable(cacheErr,
			"the tech is not stored, and whether it is pending cannot be told while the cache is unavailable; try again shortly")
	}
	return res, err
}

// storedTech reads one tech from MySQL, and fills the cache with it unless
// Redis is down (status Bypass).
func (r *Reader) storedTech(ctx context.Context, id string, status Status) (TechResult, error) {
	tech, err := r.get(ctx, id)
	if techlist.ErrorCode(err) == techlist.ENotFound {
		return TechResult{}, err
	}
	if err != nil {
		return TechResult{}, techlist.Unavailable(err, "the database is unavailable; try again shortly")
	}
	b, err := json.Marshal(tech)
	if err != nil {
		return TechResult{}, fmt.Errorf("encode tech: %w", err)
	}
	if status == Miss {
		// A stored tech never changes, so this entry needs no invalidation.
		if err := r.cache.SetTech(ctx, id, b); err != nil {
			r.logger.WarnContext(ctx, "cache fill failed", "err", err)
		}
	}
	r.observe("tech", status)
	return TechResult{JSON: b, Status: status}, nil
}

// Forget drops id from the memory of unknown ids; the api-server calls it
// on each tech.created event.
func (r *Reader) Forget(id string) { r.absent.Forget(id) }
