package cacheaside

import (
	"context"
	"testing"
)

// A reader whose look at Redis began before a flight ended (and filled the
// cache) is told to look again, not to query; after looking again it
// queries if it must.
func TestMissFlightLooksAgainAfterAFill(t *testing.T) {
	var f missFlight
	ctx := context.Background()
	queries, filled := 0, make(chan []byte, 2)
	query := func(context.Context) ([]byte, error) { queries++; return []byte("page"), nil }
	fill := func(_ context.Context, b []byte) { filled <- b }

	late := f.fills() // this reader looks at Redis before the first flight's fill
	if b, again, err := f.do(ctx, "50:@1", f.fills(), query, fill); string(b) != "page" || again || err != nil {
		t.Fatalf("first miss: got %q, again %v, %v; want the page", b, again, err)
	}
	<-filled
	for f.fills() == late { // the flight ends just after its fill
	}
	if b, again, err := f.do(ctx, "50:@1", late, query, fill); b != nil || !again || err != nil || queries != 1 {
		t.Fatalf("late miss: got %q, again %v, %v, %d queries; want to look again, 1 query", b, again, err, queries)
	}
	if b, again, err := f.do(ctx, "50:@1", lookedAgain, query, fill); string(b) != "page" || again || err != nil || queries != 2 {
		t.Fatalf("after looking again: got %q, again %v, %v, %d queries; want the page, 2 queries", b, again, err, queries)
	}
}
