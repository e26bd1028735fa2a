package cacheaside

import (
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
		b = techlist.AppendJSONString(b, t.ID)
		b = append(b, `,"text":`...)
		b = techlist.AppendJSONString(b, t.Text)
		b = append(b, `,"priority":`...)
		b = techlist.AppendJSONString(b, string(t.Priority))
		var err error
		b = append(b, `,"created_at":`...)
		if b, err = techlist.AppendJSONTime(b, t.CreatedAt); err != nil {
			return nil, err
		}
		b = append(b, `,"submitted_at":`...)
		if b, err = techlist.AppendJSONTime(b, t.SubmittedAt); err != nil {
			return nil, err
		}
		b = append(b, '}')
	}
	b = append(b, `],"next_cursor":`...)
	if page.NextCursor == nil {
		b = append(b, "null"...)
	} else {
		b = techlist.AppendJSONString(b, *page.NextCursor)
	}
	return append(b, cachedSuffix...), nil
}
