package web

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/techlist/client-app/internal/apiclient"
	"github.com/techlist/techlist"
)

// pageLoad is one load of the Tech Summary page: one page of techs, the
// numbers of the status strip and, on the first page, what became of this
// browser's submissions. fill does it.
type pageLoad struct {
	logger *slog.Logger
	api    API
	cfg    Config
	cursor string       // the page's cursor; empty for the first page
	queued string       // the well-formed id of the tech just submitted, or ""
	subs   []submission // the browser's submissions, from its cookie
}

// pageReads is what the api-server answered for one page load.
type pageReads struct {
	list    apiclient.ListResult
	listErr error
	stats   apiclient.Stats
	statErr error
	// What it said of each submission asked about, in their order.
	states []apiclient.TechState
	errs   []error
}

// fill reads, at the same time, one page of techs, the numbers of the
// status strip and, on the first page, what became of the submissions (and
// of the one just submitted). It fills page, and returns the page's status
// and the submissions still to remember.
func (l pageLoad) fill(ctx context.Context, page *indexPage) (int, []submission) {
	if len(l.cursor) > maxCursorLength || !utf8.ValidString(l.cursor) {
		page.Banner = &banner{Title: "That page link is not valid", Detail: "Start again from the newest techs."}
		return http.StatusBadRequest, l.subs
	}
	asked := l.asked()
	rd := l.read(ctx, asked)

	page.Stats = newStatsView(rd.stats, rd.statErr)
	if rd.statErr != nil && !apiclient.IsUnreachable(rd.statErr) {
		l.logger.WarnContext(ctx, "stats", "err", rd.statErr)
	}
	status := http.StatusOK
	if rd.listErr != nil {
		status = listError(ctx, l.logger, rd.listErr, page)
	}
	now := l.cfg.Now()
	if i := slices.IndexFunc(asked, func(s submission) bool { return s.ID == l.queued }); i >= 0 {
		page.Notice = noticeFor(rd.states[i], rd.errs[i], now, l.cfg.QueuedTimeout, l.queued)
	}
	top, keep := l.submissions(asked, rd, now)
	page.List = l.list(rd, top)
	page.Live.EventsURL = eventsURL(l.first() && rd.listErr == nil, rd.list.Page.Data, waitingIDs(top))
	if !l.first() {
		keep = l.subs // only the first page shows them, and nothing is forgotten
	}
	return status, keep
}

func (l pageLoad) first() bool { return l.cursor == "" }

// asked is the submissions to ask the api-server about: on the first page,
// the cookie's, with the one just submitted first if the browser kept no
// cookie of it; none on the others.
func (l pageLoad) asked() []submission {
	if !l.first() {
		return nil
	}
	if techlist.ValidID(l.queued) && !slices.ContainsFunc(l.subs, func(s submission) bool { return s.ID == l.queued }) {
		// The browser kept no cookie: the tech is still shown, without its text.
		return append([]submission{{ID: l.queued}}, l.subs...)
	}
	return l.subs
}

// read asks the api-server, at the same time, for the page of techs, the
// numbers and the state of each submission asked about.
func (l pageLoad) read(ctx context.Context, asked []submission) pageReads {
	rd := pageReads{states: make([]apiclient.TechState, len(asked)), errs: make([]error, len(asked))}
	var wg sync.WaitGroup
	wg.Go(func() { rd.list, rd.listErr = l.api.ListTechs(ctx, l.cfg.PageSize, l.cursor) })
	wg.Go(func() { rd.stats, rd.statErr = l.api.Stats(ctx) })
	for i, s := range asked {
		wg.Go(func() { rd.states[i], rd.errs[i] = l.api.Tech(ctx, s.ID) })
	}
	wg.Wait()
	return rd
}

// submissions returns the views shown above the list for the submissions
// asked about, and those of them the cookie still remembers.
func (l pageLoad) submissions(asked []submission, rd pageReads, now time.Time) (top []techView, keep []submission) {
	listed := map[string]bool{}
	for _, t := range rd.list.Page.Data {
		listed[t.ID] = true
	}
	for i, s := range asked {
		// A stored tech is the list's to show, or no one's when the list
		// failed to load.
		inList := listed[s.ID] || rd.listErr != nil
		v, shown, pending := l.submissionView(s, rd.states[i], rd.errs[i], inList, now)
		if shown {
			top = append(top, v)
		}
		if pending && s.Text != "" { // one without its text is not worth a cookie
			keep = append(keep, s)
		}
	}
	return top, keep
}

// submissionView is how the page shows s above the list, given what the
// api-server said of it: shown is false when it is not shown there, and
// pending is true while it may still be stored.
func (l pageLoad) submissionView(s submission, st apiclient.TechState, err error, inList bool, now time.Time) (v techView, shown, pending bool) {
	switch {
	case err == nil && !st.Pending:
		// Stored: shown in the list, or here if the list missed it.
		if inList {
			return techView{}, false, false
		}
		v = storedView(st.Tech)
		v.Own = true
		return v, true, false
	case err == nil:
		return pendingView(s.ID, s.Text, stateQueued, now, l.cfg.QueuedTimeout), true, true
	case isAPIError(err, http.StatusNotFound):
		if s.ID != l.queued {
			return techView{}, false, false
		}
		return pendingView(s.ID, s.Text, stateLost, now, l.cfg.QueuedTimeout), true, false
	default:
		// Unknown for now (the api-server is down): still queued as far
		// as anyone knows.
		return pendingView(s.ID, s.Text, stateQueued, now, l.cfg.QueuedTimeout), true, true
	}
}

// list is the list: the submissions' views top first, then the page
// of stored techs.
func (l pageLoad) list(rd pageReads, top []techView) listView {
	list := listView{Loaded: rd.listErr == nil, Cursor: l.cursor}
	if rd.listErr == nil {
		list.Read = newLastRead(rd.list)
		if rd.list.Page.NextCursor != nil {
			list.NextCursor = *rd.list.Page.NextCursor
		}
	}
	list.Techs = append(list.Techs, top...)
	for _, t := range rd.list.Page.Data {
		list.Techs = append(list.Techs, storedView(t))
	}
	for _, v := range list.Techs {
		if v.State == stateStored {
			list.Count++
		}
	}
	return list
}

// waitingIDs is the ids of the views still waiting to be stored.
func waitingIDs(views []techView) []string {
	var ids []string
	for _, v := range views {
		if v.State == stateQueued || v.State == stateLate {
			ids = append(ids, v.ID)
		}
	}
	return ids
}

// The notices about the tech just submitted; the page's script changes the
// first into one of the others when the tech's fate is known.
const (
	noticeQueued = "Queued: your tech is being analysed; it appears in the list once stored."
	noticeStored = "Stored: your tech is in the list with its priority."
	noticeLate   = "Not stored yet: see the note beside your tech."
	noticeLost   = "Not stored: see the note beside your tech."
)

// noticeFor is the notice about the tech id, given what the api-server
// said of it.
func noticeFor(st apiclient.TechState, err error, now time.Time, timeout time.Duration, id string) string {
	var apiErr *apiclient.APIError
	switch {
	case err == nil && !st.Pending:
		return noticeStored
	case err == nil:
		if v := pendingView(id, "", stateQueued, now, timeout); v.State == stateLate {
			return noticeLate
		}
	case errors.As(err, &apiErr) && apiErr.Status == http.StatusNotFound:
		return noticeLost
	}
	return noticeQueued
}

// eventsURL is the address of the page's event stream. On the first page
// it asks for what was stored after the newest listed tech (and for the
// fate of the queued ones), so nothing stored between the page's read and
// the stream's start is missed.
func eventsURL(first bool, listed []techlist.Tech, queued []string) string {
	if !first {
		return "/events"
	}
	q := url.Values{"after": {""}}
	if len(listed) > 0 {
		q.Set("after", listed[0].ID)
	}
	for _, id := range queued {
		q.Add("queued", id)
	}
	return "/events?" + q.Encode()
}

// wrongURLBanner tells that the client-app's API_URL leads elsewhere.
var wrongURLBanner = &banner{
	Title:  "The API server is not where this site looks for it",
	Detail: "The list cannot be shown: the site's API_URL setting does not lead to the API server's API. Whoever runs the site needs to correct it.",
}

// listError puts on the page what went wrong reading the list and returns
// the page's status.
func listError(ctx context.Context, logger *slog.Logger, err error, page *indexPage) int {
	if apiclient.IsUnreachable(err) {
		logger.WarnContext(ctx, "list techs: api-server unreachable", "err", err)
		page.Banner = &banner{
			Title:  "The API server is unreachable",
			Detail: "The list cannot be shown right now. Check that the api-server is running, then refresh.",
		}
		return http.StatusServiceUnavailable
	}
	if apiclient.IsWrongURL(err) {
		logger.ErrorContext(ctx, "list techs: check API_URL", "err", err)
		page.Banner = wrongURLBanner
		return http.StatusBadGateway
	}
	apiErr, ok := errors.AsType[*apiclient.APIError](err)
	if !ok {
		logger.ErrorContext(ctx, "list techs", "err", err)
		page.Banner = &banner{
			Title:  "The API server sent an unexpected answer",
			Detail: "The list cannot be shown right now. Try again in a moment.",
		}
		return http.StatusServiceUnavailable
	}
	switch {
	case apiErr.Status >= 500:
		logger.WarnContext(ctx, "list techs: api-server error", "err", err)
		page.Banner = &banner{
			Title:  "The API server cannot load the list right now",
			Detail: sentence(apiErr.Message) + ". Try again in a moment.",
		}
		return http.StatusServiceUnavailable
	case apiErr.Status == http.StatusTooManyRequests:
		page.Banner = &banner{Title: "Too many requests", Detail: "Wait a moment, then refresh."}
		return http.StatusTooManyRequests
	default:
		page.Banner = &banner{
			Title:  "The list could not be loaded",
			Detail: sentence(apiErr.Message) + ". Start again from the newest techs.",
		}
		return http.StatusBadRequest
	}
}
