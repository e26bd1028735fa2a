package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strconv"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// pages holds the parsed templates and renders them.
type pages struct {
	tmpl   *template.Template
	logger *slog.Logger
}

// parsePages parses every template once, at start, so a broken template
// stops the service instead of failing a request.
func parsePages(logger *slog.Logger, static fs.FS) (*pages, error) {
	versions, err := staticVersions(static)
	if err != nil {
		return nil, err
	}
	funcs := template.FuncMap{
		// static returns the URL of an embedded static file with a content
		// hash, so it can be cached for a year and still change on deploy.
		"static": func(name string) (string, error) {
			v, ok := versions[name]
			if !ok {
				return "", fmt.Errorf("no static file %q", name)
			}
			return "/static/" + name + "?v=" + v, nil
		},
		// emptyTech and badges feed the <template> elements the page's
		// script copies for techs that arrive live.
		"emptyTech": func() techView { return techView{State: stateStored} },
		"badges": func() []string {
			return []string{"high", "medium", "low", "unknown", stateQueued, stateLate, stateLost}
		},
	}
	tmpl, err := template.New("").Funcs(funcs).ParseFS(templateFS, "templates/*.html")
	if err != nil {
		return nil, fmt.Errorf("parse templates: %w", err)
	}
	for _, name := range []string{"index.html", "about.html", "error.html"} {
		if tmpl.Lookup(name) == nil {
			return nil, fmt.Errorf("parse templates: no template %q", name)
		}
	}
	return &pages{tmpl: tmpl, logger: logger}, nil
}

// staticVersions returns a short content hash of every static file.
func staticVersions(static fs.FS) (map[string]string, error) {
	versions := map[string]string{}
	err := fs.WalkDir(static, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(static, path)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(data)
		versions[path] = hex.EncodeToString(sum[:6])
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("static files: %w", err)
	}
	return versions, nil
}

// render executes the template name into a buffer and, only when that
// succeeds, writes it with status; a template error becomes a clean 500 page.
// No page is stored by a cache: pages carry the user's queued texts and the
// form's idempotency key. (Static files are cached; see handleStatic.)
func (p *pages) render(w http.ResponseWriter, r *http.Request, status int, name string, data any) {
	w.Header().Set("Cache-Control", "no-store")
	var buf bytes.Buffer
	if err := p.tmpl.ExecuteTemplate(&buf, name, data); err != nil {
		p.logger.ErrorContext(r.Context(), "render template", "template", name, "err", err)
		if name != "error.html" {
			p.renderError(w, r, http.StatusInternalServerError, "Something went wrong",
				"The page could not be shown. Try again in a moment.")
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusInternalServerError)
		fmt.Fprint(w, fallbackErrorPage)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = buf.WriteTo(w)
	}
}

// errorPage is the data of error.html.
type errorPage struct {
	Title   string
	Nav     string
	Status  int
	Heading string
	Message string
}

// renderError renders the error page with status.
func (p *pages) renderError(w http.ResponseWriter, r *http.Request, status int, heading, message string) {
	p.render(w, r, status, "error.html", errorPage{
		Title:   heading + " · Tech Summary",
		Status:  status,
		Heading: heading,
		Message: message,
	})
}

const fallbackErrorPage = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Error · Tech Summary</title></head>
<body><h1>Something went wrong</h1><p>The page could not be shown. <a href="/">Back to the Tech Summary</a></p></body></html>
`
