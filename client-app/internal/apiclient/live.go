package apiclient

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/techlist/techlist"
)

// Stats is the api-server's GET /api/v1/stats. Waiting and Total are nil
// when the api-server could not count them.
type Stats struct {
	QueueMode string     `json:"queue_mode"`
	Waiting   *int64     `json:"waiting"`
	Total     *int64     `json:"total"`
	Cache     CacheStats `json:"cache"`
	// Live reports whether the api-server relays the worker's events.
	Live        bool      `json:"live"`
	GeneratedAt time.Time `json:"generated_at"`
}

// CacheStats counts the api-server's list reads since it started.
type CacheStats struct {
	Hits     int64    `json:"hits"`
	Misses   int64    `json:"misses"`
	Bypasses int64    `json:"bypasses"`
	HitRatio *float64 `json:"hit_ratio"`
}

// Stats reads the api-server's numbers.
func (c *Client) Stats(ctx context.Context) (Stats, error) {
	const op = "stats"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base.JoinPath("api", "v1", "stats").String(), nil)
	if err != nil {
		return Stats{}, fmt.Errorf("apiclient: %s: %w", op, err)
	}
	req.Header.Set("Accept", "application/json")
	var s Stats
	if _, err := c.doFixed(req, op, http.StatusOK, &s); err != nil {
		return Stats{}, err
	}
	return s, nil
}

// TechState is what the api-server knows of one id: the stored tech, or
// that it was accepted and is not stored yet.
type TechState struct {
	Tech    techlist.Tech // set when stored
	Pending bool
}

// Tech asks for the tech with id: stored (200), or pending (202). An id the
// api-server does not know is an *APIError with status 404.
func (c *Client) Tech(ctx context.Context, id string) (TechState, error) {
	const op = "get tech"
	if !techlist.ValidID(id) {
		return TechState{}, &APIError{Status: http.StatusNotFound, Code: techlist.ENotFound, Message: "no tech with that id"}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base.JoinPath("api", "v1", "techs", id).String(), nil)
	if err != nil {
		return TechState{}, fmt.Errorf("apiclient: %s: %w", op, err)
	}
	req.Header.Set("Accept", "application/json")
	status, _, data, err := c.exchange(c.hc, req, op)
	if err != nil {
		return TechState{}, err
	}
	switch status {
	case http.StatusOK:
		var t techlist.Tech
		if err := json.Unmarshal(data, &t); err != nil {
			return TechState{}, fmt.Errorf("apiclient: %s: decode answer: %w", op, err)
		}
		if t.ID != id {
			return TechState{}, fmt.Errorf("apiclient: %s: answer is about id %q, not %q", op, t.ID, id)
		}
		return TechState{Tech: t}, nil
	case http.StatusAccepted:
		return TechState{Pending: true}, nil
	}
	return TechState{}, decodeError(status, data)
}

// maxEventLine bounds one line of the event stream; an event is a tech of
// at most 200 characters, so this is generous.
const maxEventLine = 64 << 10

// EventStream reads the api-server's GET /api/v1/events.
type EventStream struct {
	body io.ReadCloser
	sc   *bufio.Scanner
	idle *idleReader // nil without an idle timeout
}

// Events opens the api-server's event stream. It returns once the
// api-server has answered, which is after it registered this client, so
// no event stored from then on is missed. The caller closes the stream.
func (c *Client) Events(ctx context.Context) (*EventStream, error) {
	const op = "events"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base.JoinPath("api", "v1", "events").String(), nil)
	if err != nil {
		return nil, fmt.Errorf("apiclient: %s: %w", op, err)
	}
	req.Header.Set("Accept", "text/event-stream")
	resp, err := c.stream.Do(req)
	if err != nil {
		return nil, &TransportError{Op: op, Err: err}
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		data, _ := readBody(resp.Body)
		return nil, decodeError(resp.StatusCode, data)
	}
	return NewEventStream(resp.Body, StreamIdleTimeout), nil
}

// StreamIdleTimeout is how long an event stream may send nothing at all
// before it is taken for dead: three of the api-server's heartbeats.
const StreamIdleTimeout = 45 * time.Second

// NewEventStream reads Server-Sent Events from body, which Close closes.
// When idle is positive and nothing arrives for that long, the stream is
// closed and Next fails, as with a connection that died silently.
func NewEventStream(body io.ReadCloser, idle time.Duration) *EventStream {
	s := &EventStream{body: body}
	var r io.Reader = body
	if idle > 0 {
		s.idle = newIdleReader(body, idle)
		r = s.idle
	}
	s.sc = bufio.NewScanner(r)
	s.sc.Buffer(make([]byte, 0, 4<<10), maxEventLine)
	return s
}

// ErrStreamIdle is the error of a stream that sent nothing for too long.
var ErrStreamIdle = errors.New("the event stream sent nothing for too long")

// idleReader closes body when no read returns for idle.
type idleReader struct {
	body  io.ReadCloser
	idle  time.Duration
	timer *time.Timer
	fired atomic.Bool
}

func newIdleReader(body io.ReadCloser, idle time.Duration) *idleReader {
	r := &idleReader{body: body, idle: idle}
	r.timer = time.AfterFunc(idle, func() {
		r.fired.Store(true)
		body.Close()
	})
	return r
}

func (r *idleReader) Read(p []byte) (int, error) {
	n, err := r.body.Read(p)
	if r.fired.Load() {
		return n, ErrStreamIdle
	}
	if err != nil {
		r.timer.Stop()
	} else {
		r.timer.Reset(r.idle)
	}
	return n, err
}

// Next returns the next tech.created event of the stream. Comments, other
// fields and events that are not well-formed tech.created events are
// skipped. It returns io.EOF when the api-server ends the stream, and a
// *TransportError when the connection fails.
func (s *EventStream) Next() (techlist.Event, error) {
	var name string
	var data bytes.Buffer
	for s.sc.Scan() {
		line := s.sc.Bytes()
		if len(line) == 0 { // the blank line ends an event
			if name == techlist.EventTechCreated || name == "" && data.Len() > 0 {
				if ev, err := techlist.DecodeEvent(data.Bytes()); err == nil {
					return ev, nil
				}
			}
			name = ""
			data.Reset()
			continue
		}
		field, value, _ := bytes.Cut(line, []byte(":"))
		value = bytes.TrimPrefix(value, []byte(" "))
		switch string(field) {
		case "event":
			name = string(value)
		case "data":
			if data.Len() > 0 {
				data.WriteByte('\n')
			}
			data.Write(value)
		}
	}
	if err := s.sc.Err(); err != nil {
		return techlist.Event{}, &TransportError{Op: "events", Err: err}
	}
	return techlist.Event{}, io.EOF
}

// Close ends the stream.
func (s *EventStream) Close() error {
	if s.idle != nil {
		s.idle.timer.Stop()
	}
	return s.body.Close()
}
