package web

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/techlist/client-app/internal/apiclient"
	"github.com/techlist/techlist"
)

const (
	// maxFormBytes bounds the body of POST /techs; the text itself is at
	// most 200 characters, so this is generous.
	maxFormBytes = 64 << 10
	// maxCursorLength bounds the cursor passed on to the api-server.
	maxCursorLength = 1024
	// maxQueuedIDLength bounds the id echoed in the queued notice.
	maxQueuedIDLength = 64
	// readyTimeout bounds the api-server check of /readyz.
	readyTimeout = 2 * time.Second
)

// indexPage is the data of index.html.
type indexPage struct {
	Title    string
	Banner   *banner
	QueuedID string
	Form     formView
	List     listView
}

// banner is a page-wide error, such as the api-server being down.
type banner struct {
	Title  string
	Detail string
}

// formView is the add form: the text kept in the box and what went wrong.
type formView struct {
	Text       string
	MaxLength  int
	FieldError string // beside the text field: the text itself is the problem
	Alert      string // below the form: the submission failed for another reason
}

// listView is one page of the list.
type listView struct {
	Loaded     bool
	Techs      []techView
	Count      int
	Source     string // "cached", "live" or "bypass"
	Cursor     string // the cursor of this page; empty on the first
	NextCursor string
}

type techView struct {
	Text     string
	Priority string
	Machine  string // RFC 3339, for <time datetime>
	Human    string
}

func newIndexPage() indexPage {
	return indexPage{
		Title: "Tech Summary",
		Form:  formView{MaxLength: techlist.MaxTextLength},
	}
}

// handleIndex serves the Tech Summary page.
func handleIndex(logger *slog.Logger, api API, p *pages, pageSize int) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		page := newIndexPage()
		if id := q.Get("queued"); id != "" {
			page.QueuedID = truncate(id, maxQueuedIDLength)
		}
		status := loadList(r.Context(), logger, api, pageSize, q.Get("cursor"), &page)
		p.render(w, r, status, "index.html", page)
	})
}

// handleCreateTech takes the add form: it validates the text, submits it to
// the api-server and redirects to the page with a notice, or shows the page
// again with the problem and the text kept.
func handleCreateTech(logger *slog.Logger, api API, p *pages, pageSize int) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
		if err := r.ParseForm(); err != nil {
			if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
				p.renderError(w, r, http.StatusRequestEntityTooLarge, "Submission too large",
					fmt.Sprintf("A tech is at most %d characters; the form sent was far larger.", techlist.MaxTextLength))
				return
			}
			p.renderError(w, r, http.StatusBadRequest, "The form could not be read", "Go back to the page and submit the form again.")
			return
		}
		raw := r.PostFormValue("text")
		page := newIndexPage()
		page.Form.Text = raw

		status := http.StatusOK
		text, err := techlist.ValidateText(raw)
		if err != nil {
			status = http.StatusBadRequest
			page.Form.FieldError = "Check the text"
			if e, ok := errors.AsType[*techlist.Error](err); ok {
				page.Form.FieldError = sentence(e.Message)
			}
		} else {
			id, err := api.CreateTech(r.Context(), text)
			if err == nil {
				http.Redirect(w, r, "/?queued="+url.QueryEscape(id), http.StatusSeeOther)
				return
			}
			status = submitError(r.Context(), logger, err, &page.Form)
		}
		// The list is shown below the form again; its own failure shows as
		// a banner but the status stays that of the submission.
		loadList(r.Context(), logger, api, pageSize, "", &page)
		p.render(w, r, status, "index.html", page)
	})
}

// submitError puts what went wrong with a submission on the form and
// returns the status of the page.
func submitError(ctx context.Context, logger *slog.Logger, err error, form *formView) int {
	const notSubmitted = "The API server is unreachable; your tech was not submitted"
	if apiclient.IsUnreachable(err) {
		logger.WarnContext(ctx, "create tech: api-server unreachable", "err", err)
		form.Alert = notSubmitted
		return http.StatusServiceUnavailable
	}
	apiErr, ok := errors.AsType[*apiclient.APIError](err)
	if !ok {
		logger.ErrorContext(ctx, "create tech", "err", err)
		form.Alert = "The API server sent an answer this page could not read; your tech may not have been submitted"
		return http.StatusServiceUnavailable
	}
	switch {
	case apiErr.Status == http.StatusTooManyRequests:
		form.Alert = "Too many submissions; wait a moment and try again"
		return http.StatusTooManyRequests
	case apiErr.Status >= 500:
		logger.WarnContext(ctx, "create tech: api-server error", "err", err)
		form.Alert = "The API server could not take your tech, so it was not submitted; try again in a moment"
		if apiErr.Status == http.StatusServiceUnavailable && apiErr.Message != "" {
			form.Alert = sentence(apiErr.Message) + " (your tech was not submitted; try again in a moment)"
		}
		return http.StatusServiceUnavailable
	default:
		// 400 and the other answers about the request: the text is the problem.
		form.FieldError = sentence(apiErr.Message)
		return http.StatusBadRequest
	}
}

// loadList reads one page of techs into page, or puts a banner on it saying
// why it could not, and returns the status that page should have.
func loadList(ctx context.Context, logger *slog.Logger, api API, pageSize int, cursor string, page *indexPage) int {
	if len(cursor) > maxCursorLength || !utf8.ValidString(cursor) {
		page.Banner = &banner{Title: "That page link is not valid", Detail: "Start again from the newest techs."}
		return http.StatusBadRequest
	}
	res, err := api.ListTechs(ctx, pageSize, cursor)
	if err != nil {
		return listError(ctx, logger, err, page)
	}
	list := listView{
		Loaded: true,
		Techs:  make([]techView, 0, len(res.Page.Data)),
		Count:  len(res.Page.Data),
		Source: source(res),
		Cursor: cursor,
	}
	if res.Page.NextCursor != nil {
		list.NextCursor = *res.Page.NextCursor
	}
	for _, t := range res.Page.Data {
		list.Techs = append(list.Techs, techView{
			Text:     t.Text,
			Priority: string(t.Priority),
			Machine:  t.CreatedAt.UTC().Format(time.RFC3339),
			Human:    t.CreatedAt.UTC().Format("2 Jan 2006, 15:04 UTC"),
		})
	}
	page.List = list
	return http.StatusOK
}

func listError(ctx context.Context, logger *slog.Logger, err error, page *indexPage) int {
	if apiclient.IsUnreachable(err) {
		logger.WarnContext(ctx, "list techs: api-server unreachable", "err", err)
		page.Banner = &banner{
			Title:  "The API server is unreachable",
			Detail: "The list cannot be shown right now. Check that the api-server is running, then refresh.",
		}
		return http.StatusServiceUnavailable
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

// source names where the list came from, for the badge.
func source(res apiclient.ListResult) string {
	switch res.CacheStatus {
	case apiclient.CacheHit:
		return "cached"
	case apiclient.CacheMiss:
		return "live"
	case apiclient.CacheBypass:
		return "bypass"
	}
	if res.Cached {
		return "cached"
	}
	return "live"
}

// handleHealthz answers 200 while the process serves.
func handleHealthz() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusOK)
		fmt.Fprintln(w, "ok")
	})
}

// handleReadyz answers 200 when the api-server's /healthz answers 200 within
// readyTimeout, else 503 naming it.
func handleReadyz(logger *slog.Logger, api API) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
		defer cancel()
		err := api.Health(ctx)
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		if err == nil {
			w.WriteHeader(http.StatusOK)
			fmt.Fprintln(w, "ok")
			return
		}
		logger.WarnContext(r.Context(), "not ready", "err", err)
		reason := "unreachable"
		if apiErr, ok := errors.AsType[*apiclient.APIError](err); ok {
			reason = fmt.Sprintf("answered %d", apiErr.Status)
		}
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintf(w, "not ready: api-server %s\n", reason)
	})
}

// handleStatic serves the embedded static files. Their URLs carry a content
// hash (see the static template function), so they are cached for a year.
func handleStatic(p *pages, static fs.FS) http.Handler {
	files := http.StripPrefix("/static/", http.FileServerFS(static))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := strings.TrimPrefix(r.URL.Path, "/static/")
		if info, err := fs.Stat(static, name); name == "" || err != nil || info.IsDir() {
			p.renderError(w, r, http.StatusNotFound, "Page not found", "There is no file at this address.")
			return
		}
		w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
		files.ServeHTTP(w, r)
	})
}

// handleNotFound answers every address no route claims.
func handleNotFound(p *pages) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.renderError(w, r, http.StatusNotFound, "Page not found", "There is no page at this address.")
	})
}

// handleMethodNotAllowed answers a known address asked with another method.
func handleMethodNotAllowed(p *pages, allow string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", allow)
		p.renderError(w, r, http.StatusMethodNotAllowed, "Method not allowed",
			"This address does not take "+r.Method+" requests.")
	})
}

// handleForbidden answers a cross-site form post, refused as CSRF.
func handleForbidden(p *pages) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.renderError(w, r, http.StatusForbidden, "Request refused",
			"The form was sent from another site, so it was not accepted. Use the form on this page instead.")
	})
}

// sentence makes an API or validation message read as the start of a
// sentence: first letter capitalised, no trailing full stop.
func sentence(s string) string {
	s = strings.TrimRight(strings.TrimSpace(s), ".")
	r, size := utf8.DecodeRuneInString(s)
	if r == utf8.RuneError {
		return s
	}
	return string(unicode.ToUpper(r)) + s[size:]
}

// truncate shortens s to at most n bytes without splitting a character.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
