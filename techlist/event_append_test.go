package techlist

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
)

func TestEventAppendJSONIsMarshal(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 123456000, time.UTC)
	tech := Tech{ID: fuzzID, Text: "Go", Priority: PriorityHigh, CreatedAt: at, SubmittedAt: at.Add(-time.Second)}
	traced := TraceContext{Traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", Tracestate: "a=b"}
	texts := []string{"Go", `<script>alert("x")</script> & co`, "tab\there", "emoji 🚀 and é", "line\u2028sep", "back\\slash", "\xff bad"}
	var events []Event
	for _, text := range texts {
		tt := tech
		tt.Text = text
		events = append(events, Event{Type: EventTechCreated, Tech: tt}, Event{Type: EventTechCreated, Tech: tt, TraceContext: traced})
	}
	zoned := tech
	zoned.SubmittedAt = at.In(time.FixedZone("", 2*60*60))
	events = append(events, Event{Type: EventTechCreated, Tech: zoned}, Event{Type: EventTechCreated}, Event{Tech: tech, TraceContext: TraceContext{Tracestate: "x"}})
	for _, ev := range events {
		want, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		got, err := ev.AppendJSON([]byte("prefix"))
		if err != nil || !bytes.Equal(got, append([]byte("prefix"), want...)) {
			t.Errorf("AppendJSON of %+v:\n got %s, %v\nwant prefix%s", ev, got, err, want)
		}
	}
	if _, err := (Event{Tech: Tech{CreatedAt: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}}).AppendJSON(nil); err == nil {
		t.Error("AppendJSON of a year past 9999: got no error, want one, as json.Marshal gives")
	}
}

func FuzzEventAppendJSON(f *testing.F) {
	f.Add("Go", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", int64(1767323045123456789))
	f.Add("<b>\"q\"\u2028\x01", "", int64(0))
	f.Fuzz(func(t *testing.T, text, traceparent string, nanos int64) {
		at := time.Unix(0, nanos).UTC()
		ev := Event{Type: EventTechCreated, Tech: Tech{ID: text, Text: text, Priority: Priority(text), CreatedAt: at, SubmittedAt: at},
			TraceContext: TraceContext{Traceparent: traceparent}}
		want, werr := json.Marshal(ev)
		got, gerr := ev.AppendJSON(nil)
		if (werr == nil) != (gerr == nil) || werr == nil && !bytes.Equal(got, want) {
			t.Fatalf("AppendJSON: %s, %v; json.Marshal: %s, %v", got, gerr, want, werr)
		}
	})
}
