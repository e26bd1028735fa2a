package techlist

import (
	"encoding/json"
	"time"
)

// AppendJSON appends the event's JSON to b: the same bytes json.Marshal
// writes (TestEventAppendJSONIsMarshal checks it), without its reflection.
// The worker encodes one event per stored row, so in a drain this is a hot
// path; a string that needs escaping goes through encoding/json.
func (ev Event) AppendJSON(b []byte) ([]byte, error) {
	b = append(b, `{"type":`...)
	b = AppendJSONString(b, ev.Type)
	b = append(b, `,"tech":{"id":`...)
	b = AppendJSONString(b, ev.Tech.ID)
	b = append(b, `,"text":`...)
	b = AppendJSONString(b, ev.Tech.Text)
	b = append(b, `,"priority":`...)
	b = AppendJSONString(b, string(ev.Tech.Priority))
	var err error
	if b, err = AppendJSONTime(append(b, `,"created_at":`...), ev.Tech.CreatedAt); err != nil {
		return nil, err
	}
	if b, err = AppendJSONTime(append(b, `,"submitted_at":`...), ev.Tech.SubmittedAt); err != nil {
		return nil, err
	}
	b = append(b, '}')
	if ev.Traceparent != "" {
		b = AppendJSONString(append(b, `,"traceparent":`...), ev.Traceparent)
	}
	if ev.Tracestate != "" {
		b = AppendJSONString(append(b, `,"tracestate":`...), ev.Tracestate)
	}
	return append(b, '}'), nil
}

// AppendJSONString appends s quoted as encoding/json quotes it (the
// events here and the api-server's list pages use it): printable
// ASCII other than the quote, the backslash and <, >, & (which encoding/json
// escapes for HTML) is copied; any other string is left to encoding/json.
func AppendJSONString(b []byte, s string) []byte {
	for i := range len(s) {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // a string always encodes
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// AppendJSONTime appends t as Time.MarshalJSON does.
func AppendJSONTime(b []byte, t time.Time) ([]byte, error) {
	b = append(b, '"')
	b, err := t.AppendText(b)
	if err != nil {
		return nil, err
	}
	return append(b, '"'), nil
}
