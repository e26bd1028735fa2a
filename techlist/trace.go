package techlist

import (
	"regexp"
	"strings"
)

// TraceContext is the W3C trace context a message carries across the queue
// (the envelope) and back to the pages (the tech.created event): the
// "traceparent" and "tracestate" of the span that produced it. Both
// members are optional; a reader that does not trace ignores them.
type TraceContext struct {
	Traceparent string `json:"traceparent,omitempty"`
	Tracestate  string `json:"tracestate,omitempty"`
}

var traceparentForm = regexp.MustCompile(`^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$`)

// ValidTraceparent reports whether s has the W3C traceparent form.
func ValidTraceparent(s string) bool { return len(s) == 55 && traceparentForm.MatchString(s) }

// ValidTracestate reports whether s may be a W3C tracestate: at most 512
// printable ASCII characters.
func ValidTracestate(s string) bool {
	if len(s) > 512 {
		return false
	}
	for i := range len(s) {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// checked returns c without a member that does not have its form: a
// message's trace context is a hint, so a bad one is dropped, never a
// reason to refuse the message.
func (c TraceContext) checked() TraceContext {
	if !ValidTraceparent(c.Traceparent) {
		return TraceContext{}
	}
	if c.Tracestate = BoundTracestate(c.Tracestate); !ValidTracestate(c.Tracestate) {
		c.Tracestate = ""
	}
	return c
}

// MaxTracestate is the most of a tracestate a message carries: the 512
// characters the W3C Trace Context spec asks every tracer to pass on. A
// caller may send 32 members of 256 characters (about 8 KB), which would
// otherwise ride in every envelope and event.
const MaxTracestate = 512

// BoundTracestate returns s cut to at most MaxTracestate characters as the
// W3C spec says to truncate: members over 128 characters go first, then
// members from the end. Empty members and the spaces around members go
// too, when it cuts.
func BoundTracestate(s string) string {
	if len(s) <= MaxTracestate {
		return s
	}
	var kept []string
	size := -1 // the commas between members
	for m := range strings.SplitSeq(s, ",") {
		m = strings.Trim(m, " \t")
		if m == "" || len(m) > 128 {
			continue
		}
		if size+1+len(m) > MaxTracestate {
			break
		}
		kept = append(kept, m)
		size += 1 + len(m)
	}
	return strings.Join(kept, ",")
}
