// Package apiclient is a typed HTTP client of the api-server's JSON API.
//
// Answers the api-server gives on purpose come back as *APIError; failures to
// reach it at all (refused connection, timeout, reset) come back as
// *TransportError, so a caller can tell "the API said no" from "the API is not
// there".
package apiclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/techlist/techlist"
	"github.com/techlist/techlist/service"
)

// MaxBodySize is the most this client reads of any answer.
const MaxBodySize = 4 << 20

// Client calls one api-server. It is safe for concurrent use.
type Client struct {
	base *url.URL
	hc   *http.Client
	// stream is hc without its overall timeout, for the event stream,
	// which stays open; its transport still bounds connecting and the
	// wait for the answer's headers.
	stream *http.Client
}

// New returns a client of the api-server at baseURL (such as
// http://localhost:5000) that sends its requests through hc. The client
// never closes hc, which the caller built and owns.
func New(baseURL *url.URL, hc *http.Client) *Client {
	u := *baseURL
	u.RawQuery, u.Fragment = "", ""
	stream := *hc
	stream.Timeout = 0
	return &Client{base: &u, hc: hc, stream: &stream}
}

// APIError is an error answer of the api-server:
// {"error": {"code", "message", "field"}} with its HTTP status.
type APIError struct {
	Status  int
	Code    string
	Message string
	Field   string
}

func (e *APIError) Error() string {
	msg := fmt.Sprintf("api-server answered %d %s: %s", e.Status, e.Code, e.Message)
	if e.Field != "" {
		msg += " (field " + e.Field + ")"
	}
	return msg
}

// TransportError reports that a request did not get an answer from the
// api-server: it could not be reached, or the connection failed or timed out.
type TransportError struct {
	Op  string // what was being done, such as "list techs"
	Err error
}

func (e *TransportError) Error() string {
	return "api-server unreachable: " + e.Op + ": " + e.Err.Error()
}

func (e *TransportError) Unwrap() error { return e.Err }

// WrongURLError reports that API_URL does not lead to the api-server's
// API: a route the api-server always serves answered 404 or 405, so the
// address leads to another server, or to the api-server under a path it
// does not serve (API_URL may hold a path, such as a reverse proxy's
// prefix; it is joined to every route).
type WrongURLError struct {
	Method  string
	URL     string // the address asked, without a password
	Status  int
	Service string // the program that answered, when it said (not the api-server)
}

func (e *WrongURLError) Error() string {
	if e.Service != "" {
		return fmt.Sprintf("API_URL does not lead to the api-server's API: %s %s was answered by the %s", e.Method, e.URL, e.Service)
	}
	return fmt.Sprintf("API_URL does not lead to the api-server's API: %s %s answered %d", e.Method, e.URL, e.Status)
}

// IsWrongURL reports whether err (or one it wraps) is a *WrongURLError.
func IsWrongURL(err error) bool {
	var we *WrongURLError
	return errors.As(err, &we)
}

// IsUnreachable reports whether err (or one it wraps) is a *TransportError.
func IsUnreachable(err error) bool {
	var te *TransportError
	return errors.As(err, &te)
}

// NotSent reports whether err shows that a request never reached the
// api-server (the connection could not be made), so it did nothing.
func NotSent(err error) bool {
	if !IsUnreachable(err) {
		return false
	}
	var op *net.OpError
	var dns *net.DNSError
	return (errors.As(err, &op) && op.Op == "dial") || errors.As(err, &dns)
}

// OutcomeUnknown reports whether err leaves it unknown whether a write
// took effect: the request may have reached the api-server but no answer
// came back (a timeout or a reset after sending), the api-server said so
// itself (outcome_unknown), or something in between failed (500, 502, 504).
func OutcomeUnknown(err error) bool {
	var apiErr *APIError
	if errors.As(err, &apiErr) {
		switch apiErr.Status {
		case http.StatusInternalServerError, http.StatusBadGateway, http.StatusGatewayTimeout:
			return true
		}
		return apiErr.Code == techlist.EOutcomeUnknown
	}
	return IsUnreachable(err) && !NotSent(err)
}

// Cache statuses of a list answer, from the X-Cache header.
const (
	CacheHit    = "HIT"    // served from Redis
	CacheMiss   = "MISS"   // read from MySQL, then cached
	CacheBypass = "BYPASS" // Redis unreachable; read from MySQL
)

// ListResult is one page of the newest-first list and where it came from.
type ListResult struct {
	Page   techlist.Page
	Cached bool
	// CacheStatus is the X-Cache header (HIT, MISS or BYPASS); when the
	// header is absent it is HIT or MISS after Cached.
	CacheStatus string
	// Elapsed is how long the call took, as this client measured it.
	Elapsed time.Duration
}

// ListTechs reads one page of techs, newest first. limit is passed when
// positive; cursor, when not empty, is a next_cursor from an earlier page.
func (c *Client) ListTechs(ctx context.Context, limit int, cursor string) (ListResult, error) {
	const op = "list techs"
	u := c.base.JoinPath("api", "v1", "techs")
	q := url.Values{}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	if cursor != "" {
		q.Set("cursor", cursor)
	}
	u.RawQuery = q.Encode()

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return ListResult{}, fmt.Errorf("apiclient: %s: %w", op, err)
	}
	req.Header.Set("Accept", "application/json")
	var body struct {
		techlist.Page
		Cached bool `json:"cached"`
	}
	start := time.Now()
	header, err := c.doFixed(req, op, http.StatusOK, &body)
	elapsed := time.Since(start)
	if err != nil {
		return ListResult{}, err
	}
	status := strings.ToUpper(strings.TrimSpace(header.Get("X-Cache")))
	if status == "" {
		status = CacheMiss
		if body.Cached {
			status = CacheHit
		}
	}
	if body.Data == nil {
		body.Data = []techlist.Tech{}
	}
	return ListResult{Page: body.Page, Cached: body.Cached, CacheStatus: status, Elapsed: elapsed}, nil
}

// CreateTech submits text and returns the id the api-server gave the
// queued tech. A non-empty key is sent as the Idempotency-Key: the same key
// with the same text then never queues a second tech.
func (c *Client) CreateTech(ctx context.Context, text, key string) (string, error) {
	const op = "create tech"
	payload, err := json.Marshal(struct {
		Text string `json:"text"`
	}{text})
	if err != nil {
		return "", fmt.Errorf("apiclient: %s: %w", op, err)
	}
	u := c.base.JoinPath("api", "v1", "techs")
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(payload))
	if err != nil {
		return "", fmt.Errorf("apiclient: %s: %w", op, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	var body struct {
		ID     string `json:"id"`
		Status string `json:"status"`
	}
	if _, err := c.doFixed(req, op, http.StatusAccepted, &body); err != nil {
		return "", err
	}
	if body.ID == "" {
		return "", fmt.Errorf("apiclient: %s: answer has no id", op)
	}
	return body.ID, nil
}

// Health asks the api-server's /healthz; it returns nil on 200 from the
// api-server. A 200 from another of the programs (it says which in
// service.ServiceHeader: a worker-server, or the client-app itself) is a
// *WrongURLError. No header (an older api-server) passes.
func (c *Client) Health(ctx context.Context) error {
	const op = "health"
	u := c.base.JoinPath("healthz")
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return fmt.Errorf("apiclient: %s: %w", op, err)
	}
	header, err := c.doFixed(req, op, http.StatusOK, nil)
	if err != nil {
		return err
	}
	if who := header.Get(service.ServiceHeader); who != "" && who != "api-server" {
		return &WrongURLError{Method: req.Method, URL: req.URL.Redacted(), Status: http.StatusOK, Service: who}
	}
	return nil
}

// doFixed is do for a route the api-server always serves: a 404 or 405
// there is a *WrongURLError, not an answer about the request.
func (c *Client) doFixed(req *http.Request, op string, want int, out any) (http.Header, error) {
	header, err := c.do(req, op, want, out)
	var apiErr *APIError
	if errors.As(err, &apiErr) && (apiErr.Status == http.StatusNotFound || apiErr.Status == http.StatusMethodNotAllowed) {
		return nil, &WrongURLError{Method: req.Method, URL: req.URL.Redacted(), Status: apiErr.Status}
	}
	return header, err
}

// do sends req and, when the answer has status want, decodes its JSON body
// into out (skipped when out is nil). Any other status becomes an *APIError.
func (c *Client) do(req *http.Request, op string, want int, out any) (http.Header, error) {
	status, header, data, err := c.exchange(c.hc, req, op)
	if err != nil {
		return nil, err
	}
	if status != want {
		return nil, decodeError(status, data)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return nil, fmt.Errorf("apiclient: %s: decode answer: %w", op, err)
		}
	}
	return header, nil
}

// exchange sends req through hc and reads the whole answer, bounded by
// MaxBodySize.
func (c *Client) exchange(hc *http.Client, req *http.Request, op string) (int, http.Header, []byte, error) {
	if id := techlist.RequestID(req.Context()); id != "" {
		req.Header.Set("X-Request-Id", id) // so one tech can be followed through every log
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, nil, nil, &TransportError{Op: op, Err: err}
	}
	defer func() {
		// Drain a little so the connection can be reused, then close.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
		resp.Body.Close()
	}()

	data, err := readBody(resp.Body)
	if err != nil {
		var tooLarge *tooLargeError
		if errors.As(err, &tooLarge) {
			return 0, nil, nil, fmt.Errorf("apiclient: %s: %w", op, err)
		}
		return 0, nil, nil, &TransportError{Op: op, Err: err}
	}
	return resp.StatusCode, resp.Header, data, nil
}

type tooLargeError struct{ limit int64 }

func (e *tooLargeError) Error() string {
	return fmt.Sprintf("answer larger than %d bytes", e.limit)
}

func readBody(r io.Reader) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxBodySize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxBodySize {
		return nil, &tooLargeError{limit: MaxBodySize}
	}
	return data, nil
}

// decodeError turns an error answer into an *APIError, falling back to the
// status text when the body is not the API's JSON error shape (as from a
// proxy in between).
func decodeError(status int, data []byte) *APIError {
	var body struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
			Field   string `json:"field"`
		} `json:"error"`
	}
	e := &APIError{Status: status}
	if json.Unmarshal(data, &body) == nil {
		e.Code, e.Message, e.Field = body.Error.Code, body.Error.Message, body.Error.Field
	}
	if e.Code == "" {
		e.Code = codeForStatus(status)
	}
	if e.Message == "" {
		e.Message = strings.ToLower(http.StatusText(status))
		if e.Message == "" {
			e.Message = "unexpected status " + strconv.Itoa(status)
		}
	}
	return e
}

func codeForStatus(status int) string {
	switch status {
	case http.StatusBadRequest:
		return techlist.EInvalid
	case http.StatusNotFound:
		return techlist.ENotFound
	case http.StatusMethodNotAllowed:
		return techlist.EMethod
	case http.StatusRequestEntityTooLarge:
		return techlist.ETooLarge
	case http.StatusUnsupportedMediaType:
		return techlist.EMediaType
	case http.StatusTooManyRequests:
		return techlist.ERateLimited
	case http.StatusServiceUnavailable, http.StatusBadGateway, http.StatusGatewayTimeout:
		return techlist.EUnavailable
	}
	return techlist.EInternal
}
