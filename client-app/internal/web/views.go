package web

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/techlist/client-app/internal/apiclient"
	"github.com/techlist/techlist"
)

// States of an item of the list.
const (
	stateStored = "stored" // in MySQL, with its priority
	stateQueued = "queued" // accepted, waiting for the worker
	stateLate   = "late"   // queued for longer than the queued timeout
	stateLost   = "lost"   // the api-server no longer knows it
)

// techView is one item of the list, as the page shows it and as the
// /events stream sends it to the page's script, which fills the same
// markup from it.
type techView struct {
	ID    string `json:"id"`
	Text  string `json:"text"`
	State string `json:"state"`
	// Badge names the badge: a priority, or the state when not stored.
	Badge string `json:"badge"`
	// Submitted is when the api-server accepted it; Stored when the worker
	// stored it. The *At fields are RFC 3339 for <time datetime>.
	SubmittedAt string `json:"submitted_at"`
	Submitted   string `json:"submitted"`
	StoredAt    string `json:"stored_at"`
	Stored      string `json:"stored"`
	// StoredShort is Stored without the date when that is the submission's.
	StoredShort string `json:"stored_short"`
	// StoredAfter is how long after its submission it was stored.
	StoredAfter string `json:"stored_after"`
	// Note is a plain sentence for an item that is not stored.
	Note string `json:"note"`
	// LateInMS is, for a queued item, the milliseconds left until the
	// queued timeout; the page's script then marks it late.
	LateInMS int64 `json:"-"`
	// Own marks the techs this browser submitted.
	Own bool `json:"-"`
}

// humanTime is how the pages show a time: in UTC, to the second.
func humanTime(t time.Time) string { return t.UTC().Format("2 Jan 2006, 15:04:05 UTC") }

func machineTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// storedView is the view of a stored tech.
func storedView(t techlist.Tech) techView {
	v := techView{
		ID: t.ID, Text: t.Text, State: stateStored, Badge: string(t.Priority),
		StoredAt: machineTime(t.CreatedAt), Stored: humanTime(t.CreatedAt),
	}
	if !t.Priority.Valid() {
		v.Badge = "unknown"
	}
	submitted := t.SubmittedAt
	if submitted.IsZero() {
		submitted, _ = idTime(t.ID)
	}
	v.StoredShort = v.Stored
	if !submitted.IsZero() {
		v.SubmittedAt, v.Submitted = machineTime(submitted), humanTime(submitted)
		v.StoredAfter = after(t.CreatedAt.Sub(submitted))
		if submitted.UTC().Format(time.DateOnly) == t.CreatedAt.UTC().Format(time.DateOnly) {
			v.StoredShort = t.CreatedAt.UTC().Format("15:04:05")
		}
	}
	return v
}

// pendingView is the view of a tech this browser submitted that is not
// stored: queued, late after timeout, or lost. text may be empty when the
// browser did not keep it.
func pendingView(id, text, state string, now time.Time, timeout time.Duration) techView {
	v := techView{ID: id, Text: text, State: state, Badge: state, Own: true}
	if submitted, ok := idTime(id); ok {
		v.SubmittedAt, v.Submitted = machineTime(submitted), humanTime(submitted)
		if state == stateQueued {
			left := submitted.Add(timeout).Sub(now)
			if left <= 0 {
				v.State, v.Badge = stateLate, stateLate
			} else {
				v.LateInMS = left.Milliseconds()
			}
		}
	}
	switch v.State {
	case stateQueued:
		v.Note = "Queued: a worker is analysing it. It turns into its stored form here once stored."
	case stateLate:
		v.Note = lateNote(timeout)
	case stateLost:
		v.Note = lostNote
	}
	return v
}

func lateNote(timeout time.Duration) string {
	return "Not stored after " + seconds(timeout) + ". The worker may be stopped or busy; " +
		"it still appears here if it is stored later. Refresh to check, or add it again."
}

const lostNote = "Not stored: the API server no longer knows this tech, so it was lost on the way. Add it again."

// seconds writes d as "30 seconds" or "1.5 seconds".
func seconds(d time.Duration) string {
	s := strconv.FormatFloat(d.Seconds(), 'f', -1, 64)
	if s == "1" {
		return "1 second"
	}
	return s + " seconds"
}

// after writes a delay between submission and storage, such as
// "0.2 s later" or "3 min later".
func after(d time.Duration) string {
	switch {
	case d < 0:
		return "at once"
	case d < 10*time.Second:
		return strconv.FormatFloat(d.Seconds(), 'f', 1, 64) + " s later"
	case d < time.Minute:
		return strconv.Itoa(int(d.Seconds())) + " s later"
	case d < time.Hour:
		return strconv.Itoa(int(d.Minutes())) + " min later"
	case d < 48*time.Hour:
		return strconv.Itoa(int(d.Hours())) + " h later"
	}
	return strconv.Itoa(int(d.Hours()/24)) + " days later"
}

// idTime returns the time a UUIDv7 id was made: its first 48 bits are
// Unix milliseconds. The api-server makes the id when it accepts a tech.
func idTime(id string) (time.Time, bool) {
	if !techlist.ValidID(id) || id[14] != '7' {
		return time.Time{}, false
	}
	ms, err := strconv.ParseInt(id[0:8]+id[9:13], 16, 64)
	if err != nil {
		return time.Time{}, false
	}
	return time.UnixMilli(ms).UTC(), true
}

// lastRead says where the page's list read came from and how long it took.
type lastRead struct {
	Source string // "Redis cache", "MySQL" ...
	Detail string // the X-Cache value, explained
	Took   string
}

func newLastRead(res apiclient.ListResult) lastRead {
	lr := lastRead{Took: duration(res.Elapsed)}
	status := res.CacheStatus
	if status == "" && res.Cached {
		status = apiclient.CacheHit
	}
	switch status {
	case apiclient.CacheHit:
		lr.Source, lr.Detail = "Redis cache", "HIT"
	case apiclient.CacheBypass:
		lr.Source, lr.Detail = "MySQL", "BYPASS: Redis unreachable"
	default:
		lr.Source, lr.Detail = "MySQL", "MISS, then cached"
	}
	return lr
}

// duration writes a short duration to two significant figures or so.
func duration(d time.Duration) string {
	switch {
	case d <= 0:
		return "0 ms"
	case d < 10*time.Millisecond:
		return strconv.FormatFloat(float64(d.Microseconds())/1000, 'f', 1, 64) + " ms"
	case d < time.Second:
		return strconv.FormatInt(d.Milliseconds(), 10) + " ms"
	}
	return strconv.FormatFloat(d.Seconds(), 'f', 2, 64) + " s"
}

// statsView is the status strip's numbers, as text. The /events stream
// sends it again every few seconds; the page's script writes each value
// into the element marked data-stat="<json name>".
type statsView struct {
	Available bool `json:"-"`
	// Relaying is whether the api-server receives the worker's events.
	Relaying  bool   `json:"-"`
	QueueMode string `json:"queue_mode"`
	Waiting   string `json:"waiting"`
	Total     string `json:"total"`
	HitRatio  string `json:"hit_ratio"`
	Reads     string `json:"reads"`
}

const unknown = "–"

func newStatsView(s apiclient.Stats, err error) statsView {
	if err != nil {
		return statsView{QueueMode: unknown, Waiting: unknown, Total: unknown, HitRatio: unknown, Reads: "The API server did not answer."}
	}
	v := statsView{Available: true, Relaying: s.Live, QueueMode: s.QueueMode, Waiting: count(s.Waiting), Total: count(s.Total), HitRatio: unknown}
	switch s.QueueMode {
	case "pubsub":
		v.QueueMode = "pub/sub"
	case "":
		v.QueueMode = unknown
	}
	reads := s.Cache.Hits + s.Cache.Misses + s.Cache.Bypasses
	if s.Cache.HitRatio != nil {
		v.HitRatio = strconv.FormatFloat(*s.Cache.HitRatio*100, 'f', 0, 64) + " %"
	}
	v.Reads = fmt.Sprintf("%s %s in %s list %s since the API server started",
		group(s.Cache.Hits), plural(s.Cache.Hits, "hit", "hits"), group(reads), plural(reads, "read", "reads"))
	if s.Cache.Bypasses > 0 {
		v.Reads += fmt.Sprintf("; %s with Redis unreachable", group(s.Cache.Bypasses))
	}
	return v
}

func count(n *int64) string {
	if n == nil {
		return unknown
	}
	return group(*n)
}

// group writes n with thousands separated by commas.
func group(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

func plural(n int64, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
