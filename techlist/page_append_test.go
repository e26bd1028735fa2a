package techlist_test

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/techlist/techlist"
)

// AppendCachedPage must write exactly what json.Marshal writes (with the cached
// flag), whatever the texts hold: pages cached by either encoder are
// served side by side.
func TestAppendPageMatchesMarshal(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 600, time.UTC)
	next := "01890a5d-ac96-774b-bcce-b302099a8057"
	texts := []string{"Redis Streams", "", `a "quoted" \ back`, "<script>&amp;</script>", "tab\tnew\nline\x01",
		"émoji 🚀 and ünïcode", "line\u2028sep\u2029", "bad \xff utf-8", "100% ~`!@#$^*()_+-={}[]|:;',.?/"}
	times := []time.Time{at, at.Truncate(time.Second), time.Time{}.UTC(), at.In(time.FixedZone("", 3600)), time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("X", -5*3600))}
	var techs []techlist.Tech
	for i, text := range texts {
		techs = append(techs, techlist.Tech{ID: next, Text: text, Priority: techlist.PriorityMedium,
			CreatedAt: times[i%len(times)], SubmittedAt: times[(i+1)%len(times)]})
	}
	pages := []techlist.Page{
		{Data: []techlist.Tech{}},
		{Data: techs},
		{Data: techs[:1], NextCursor: &next},
		{Data: []techlist.Tech{{ID: "<&>", Priority: "high"}}, NextCursor: new("é\"")},
	}
	for _, page := range pages {
		want, err := json.Marshal(page)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want[:len(want)-1], techlist.CachedPageSuffix...)
		got, err := techlist.AppendCachedPage(nil, page)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("got %s, %v\nwant %s", got, err, want)
		}
	}
	bad := techlist.Page{Data: []techlist.Tech{{CreatedAt: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}}}
	if _, err := techlist.AppendCachedPage(nil, bad); err == nil {
		t.Error("a year past 9999: got no error, want the one json.Marshal gives")
	}
}
