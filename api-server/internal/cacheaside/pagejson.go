package cacheaside

import (
	"encoding/json"
	"time"
	"unicode/utf8"

	"github.com/techlist/techlist"
)

// appendPage appends the JSON of page exactly as json.Marshal writes it,
// but with "cached":true added (the form a hit is answered with), and
// without reflection: encoding a 50-tech page with json.Marshal was about
// a tenth of a miss's CPU. Anything outside the plain case (a string to
// escape, a year json refuses) is handed to json.Marshal, so the bytes
// stay the same; TestAppendPageMatchesMarshal holds them to it.
func appendPage(b []byte, page techlist.Page) ([]byte, error) {
	b = append(b, `{"data":[`...)
	for i, t := range page.Data {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"id":`...)
		b = appendString(b, t.ID)
		b = append(b, `,"text":`...)
		b = appendString(b, t.Text)
		b = append(b, `,"priority":`...)
		b = appendString(b, string(t.Priority))
		var err error
		b = append(b, `,"created_at":`...)
		if b, err = appendTime(b, t.CreatedAt); err != nil {
			return nil, err
		}
		b = append(b, `,"submitted_at":`...)
		if b, err = appendTime(b, t.SubmittedAt); err != nil {
			return nil, err
		}
		b = append(b, '}')
	}
	b = append(b, `],"next_cursor":`...)
	if page.NextCursor == nil {
		b = append(b, "null"...)
	} else {
		b = appendString(b, *page.NextCursor)
	}
	return append(b, cachedSuffix...), nil
}

// appendString appends s quoted; only printable ASCII that json writes as
// it is goes the short way.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= utf8.RuneSelf || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			v, _ := json.Marshal(s) // a string always encodes
			return append(b, v...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// appendTime appends t as time.Time's MarshalJSON does: the short way for
// a UTC time of a four-digit year (what the store reads), else by it.
func appendTime(b []byte, t time.Time) ([]byte, error) {
	if y := t.Year(); y < 0 || y > 9999 || t.Location() != time.UTC {
		v, err := t.MarshalJSON() // the error json.Marshal gives
		if err != nil {
			return nil, err
		}
		return append(b, v...), nil
	}
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"'), nil
}
