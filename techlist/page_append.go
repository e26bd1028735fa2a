package techlist

// CachedPageSuffix ends a list page as the cache keeps it: a hit is
// answered with these bytes as they are.
const CachedPageSuffix = `,"cached":true}`

// AppendCachedPage appends the JSON of page exactly as json.Marshal writes
// it, but with "cached":true added (the form a hit is answered with, and the
// form both the api-server and the worker's prefill store in Redis), and
// without reflection: encoding a 50-tech page with json.Marshal was about
// a tenth of a miss's CPU. Anything outside the plain case (a string to
// escape, a year json refuses) is handed to json.Marshal, so the bytes
// stay the same; TestAppendPageMatchesMarshal holds them to it.
func AppendCachedPage(b []byte, page Page) ([]byte, error) {
	b = append(b, `{"data":[`...)
	for i, t := range page.Data {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"id":`...)
		b = AppendJSONString(b, t.ID)
		b = append(b, `,"text":`...)
		b = AppendJSONString(b, t.Text)
		b = append(b, `,"priority":`...)
		b = AppendJSONString(b, string(t.Priority))
		var err error
		b = append(b, `,"created_at":`...)
		if b, err = AppendJSONTime(b, t.CreatedAt); err != nil {
			return nil, err
		}
		b = append(b, `,"submitted_at":`...)
		if b, err = AppendJSONTime(b, t.SubmittedAt); err != nil {
			return nil, err
		}
		b = append(b, '}')
	}
	b = append(b, `],"next_cursor":`...)
	if page.NextCursor == nil {
		b = append(b, "null"...)
	} else {
		b = AppendJSONString(b, *page.NextCursor)
	}
	return append(b, CachedPageSuffix...), nil
}
