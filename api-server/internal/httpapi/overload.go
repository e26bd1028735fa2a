package httpapi

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"

	"github.com/techlist/techlist"
)

// shedLoad returns the middleware that answers 503 with Retry-After: 1,
// at once, to a request arriving while maxInFlight others are still being
// served; zero turns it off. Past what the machine can serve, requests
// otherwise queue on the Redis and MySQL pools until every one of them is
// late, and each waiting one holds its connection's buffers and
// goroutine: open-loop load at twice the capacity took the api-server to
// 257 MB with 5,000 connections open. A quick 503 keeps the answered
// requests fast, the connections few and the memory bounded.
//
// A request's body (up to maxBody bytes) is read before it takes a slot:
// a client sending its body slowly holds a connection, not a slot, so
// slow uploads cannot turn everyone else away.
func shedLoad(maxInFlight int, maxBody int64, logger *slog.Logger) func(http.Handler) http.Handler {
	if maxInFlight <= 0 {
		return func(next http.Handler) http.Handler { return next }
	}
	slots := make(chan struct{}, maxInFlight)
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			readBodyFirst(r, maxBody)
			select {
			case slots <- struct{}{}:
				defer func() { <-slots }()
				next.ServeHTTP(w, r)
			default:
				w.Header().Set("Retry-After", "1")
				writeError(w, r, logger, techlist.Unavailable(nil, "the server is overloaded; try again in a second"))
			}
		})
	}
}

// readBodyFirst reads up to limit+1 bytes of r's body now and leaves r.Body
// giving the same bytes, then the rest, then the error the read met, so
// the handler's own reading (its size limit and errors) is unchanged.
func readBodyFirst(r *http.Request, limit int64) {
	if r.Body == nil || r.Body == http.NoBody {
		return
	}
	buf, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	rest := r.Body
	if err != nil {
		rest = io.NopCloser(errReader{err})
	}
	r.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(buf), rest), r.Body}
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }
