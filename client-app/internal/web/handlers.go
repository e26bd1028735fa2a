package web

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/techlist/client-app/internal/apiclient"
	"github.com/techlist/techlist"
	"github.com/techlist/techlist/retry"
	"github.com/techlist/techlist/service"
)

const (
	// maxFormBytes bounds the body of POST /techs; the text itself is at
	// most 200 characters, so this is generous.
	maxFormBytes = 64 << 10
	// maxCursorLength bounds the cursor passed on to the api-server.
	maxCursorLength = 1024
	// readyTimeout bounds the api-server check of /readyz.
	readyTimeout = 2 * time.Second
)

// indexPage is the data of index.html.
type indexPage struct {
	Title    string
	Nav      string // the current page in the navigation: "techs" or "about"
	Banner   *banner
	QueuedID string // the tech just submitted, for the notice
	Notice   string // what became of it
	Form     formView
	List     listView
	Stats    statsView
	Live     liveView
}

// banner is a page-wide error, such as the api-server being down.
type banner struct {
	Title  string
	Detail string
}

// formView is the add form: the text kept in the box and what went wrong.
type formView struct {
	Text string
	// Key is the form's idempotency key (see formKey), sent back with it.
	Key        string
	MaxLength  int
	FieldError string // beside the text field: the text itself is the problem
	Alert      string // below the form: the submission failed for another reason
}

// listView is one page of the list, with this browser's unstored
// submissions first on the first page.
type listView struct {
	Loaded     bool
	Techs      []techView
	Count      int // stored techs shown
	Read       lastRead
	Cursor     string // the cursor of this page; empty on the first
	NextCursor string
}

// liveView is what the page's script needs for live updates.
type liveView struct {
	EventsURL       string
	QueuedTimeoutMS int64
	LateNote        string
	LostNote        string
}

func newIndexPage(cfg Config) indexPage {
	return indexPage{
		Title: "Tech Summary",
		Nav:   "techs",
		Form:  formView{MaxLength: techlist.MaxTextLength, Key: newFormKey()},
		Stats: newStatsView(apiclient.Stats{}, errors.New("not loaded")),
		Live: liveView{
			EventsURL:       "/events",
			QueuedTimeoutMS: cfg.QueuedTimeout.Milliseconds(),
			LateNote:        lateNote(cfg.QueuedTimeout),
			LostNote:        lostNote,
		},
	}
}

// handleIndex serves the Tech Summary page.
func handleIndex(logger *slog.Logger, api API, p *pages, cfg Config) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		page := newIndexPage(cfg)
		// Only a well-formed id is shown; anything else in the link is ignored.
		queued := q.Get("queued")
		if !techlist.ValidID(queued) {
			queued = ""
		}
		if queued != "" {
			page.QueuedID = queued
			page.Notice = noticeQueued
		}
		subs := readQueued(r)
		load := pageLoad{logger: logger, api: api, cfg: cfg, cursor: q.Get("cursor"), queued: queued, subs: subs}
		status, keep := load.fill(r.Context(), &page)
		if !sameSubmissions(subs, keep) {
			writeQueued(w, r, keep)
		}
		p.render(w, r, status, "index.html", page)
	})
}

// handleCreateTech takes the add form: it validates the text, submits it to
// the api-server and redirects to the page, which shows the tech as queued
// at once; or it shows the page again with the problem and the text kept.
func handleCreateTech(logger *slog.Logger, api API, p *pages, cfg Config) http.Handler {
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
		page := newIndexPage(cfg)
		page.Form.Text = raw
		page.Form.Key = formKey(r.Context(), logger, r.PostFormValue(formKeyField))
		subs := readQueued(r)

		status := http.StatusOK
		text, err := techlist.ValidateText(raw)
		if err != nil {
			status = http.StatusBadRequest
			page.Form.FieldError = "Check the text"
			if e, ok := errors.AsType[*techlist.Error](err); ok {
				page.Form.FieldError = sentence(e.Message)
			}
		} else {
			id, err := submit(r.Context(), api, cfg, text, page.Form.Key)
			if err == nil {
				// Remembered so the next page shows it as queued, text and all.
				if techlist.ValidID(id) {
					writeQueued(w, r, append([]submission{{ID: id, Text: text}}, subs...))
				}
				// It sets the cookie of queued texts: no cache keeps it.
				w.Header().Set("Cache-Control", "no-store")
				http.Redirect(w, r, "/?queued="+url.QueryEscape(id), http.StatusSeeOther)
				return
			}
			status = submitError(r.Context(), logger, err, &page.Form)
		}
		// The list is shown below the form again; its own failure shows as
		// a banner but the status stays that of the submission.
		_, keep := pageLoad{logger: logger, api: api, cfg: cfg, subs: subs}.fill(r.Context(), &page)
		if !sameSubmissions(subs, keep) {
			writeQueued(w, r, keep)
		}
		p.render(w, r, status, "index.html", page)
	})
}

// submit sends text with the form's key. While an earlier send of the same
// form (a double click, a resubmit) is still in flight, the api-server
// answers 409: submit then waits for that send's answer, for at most
// cfg.SubmitWait, and answers as it did.
func submit(ctx context.Context, api API, cfg Config, text, key string) (string, error) {
	// A browser that goes away (a double click cancels the first send) must
	// not cut a send in half; each call is still bounded by API_TIMEOUT.
	ctx = context.WithoutCancel(ctx)
	deadline := time.Now().Add(cfg.SubmitWait)
	backoff := retry.Backoff{Min: 100 * time.Millisecond, Max: time.Second}
	for {
		id, err := api.CreateTech(ctx, text, key)
		wait := backoff.Next()
		if !isAPIError(err, http.StatusConflict) || time.Now().Add(wait).After(deadline) {
			return id, err
		}
		retry.Sleep(ctx, wait)
	}
}

func isAPIError(err error, status int) bool {
	apiErr, ok := errors.AsType[*apiclient.APIError](err)
	return ok && apiErr.Status == status
}

// What the form says when a submission's outcome is not known. Sending
// again is safe because the form's key goes with it.
const (
	unknownOutcome = "The API server did not say whether it received your tech, so it may or may not have been submitted. " +
		"Sending it again is safe: it will not be stored twice"
	stillInFlight = "Your earlier send of this form is still being processed, so whether it was submitted is not known yet. " +
		"Sending it again is safe: it will not be stored twice"
	keyUsed = "This form was already used to send another text (whether that one was submitted is not known), " +
		"so your new text was not sent. Press Add tech again to send it as a new tech"
)

// submitError puts what went wrong with a submission on the form and
// returns the status of the page.
func submitError(ctx context.Context, logger *slog.Logger, err error, form *formView) int {
	const notSubmitted = "The API server is unreachable; your tech was not submitted. Check that the api-server is running, then submit again"
	apiErr, isAPI := errors.AsType[*apiclient.APIError](err)
	switch {
	case apiclient.NotSent(err):
		logger.WarnContext(ctx, "create tech: api-server unreachable", "err", err)
		form.Alert = notSubmitted
		return http.StatusServiceUnavailable
	case apiclient.IsWrongURL(err):
		// The route was not found, so nothing was queued.
		logger.ErrorContext(ctx, "create tech: check API_URL", "err", err)
		form.Alert = "The API server is not where this site looks for it (its API_URL setting), so your tech was not submitted"
		return http.StatusBadGateway
	case apiclient.OutcomeUnknown(err) || !isAPI:
		logger.WarnContext(ctx, "create tech: outcome unknown", "err", err)
		form.Alert = unknownOutcome
		return http.StatusServiceUnavailable
	case apiErr.Status == http.StatusConflict:
		form.Alert = stillInFlight
		return http.StatusConflict
	case apiErr.Code == techlist.EIdempotencyMismatch:
		// The key belongs to the earlier text; the form gets a new one.
		form.Key = newFormKey()
		form.Alert = keyUsed
		return http.StatusUnprocessableEntity
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

func sameSubmissions(a, b []submission) bool {
	return slices.Equal(a, b)
}

// handleHealthz answers 200 while the process serves.
func handleHealthz() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(service.ServiceHeader, "client-app")
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
		if we, ok := errors.AsType[*apiclient.WrongURLError](err); ok {
			reason = fmt.Sprintf("not found at API_URL (answered %d)", we.Status)
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
