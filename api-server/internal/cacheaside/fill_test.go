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
	if b, st, again, err := f.do(ctx, "50:@1", f.fills(), query, fill); string(b) != "page" || st != Miss || again || err != nil {
		t.Fatalf("first miss: got %q, %s, again %v, %v; want the page, MISS", b, st, again, err)
	}
	<-filled
	for f.fills() == late { // the flight ends just after its fill
	}
	if b, _, again, err := f.do(ctx, "50:@1", late, query, fill); b != nil || !again || err != nil || queries != 1 {
		t.Fatalf("late miss: got %q, again %v, %v, %d queries; want to look again, 1 query", b, again, err, queries)
	}
	if b, _, again, err := f.do(ctx, "50:@1", lookedAgain, query, fill); string(b) != "page" || again || err != nil || queries != 2 {
		t.Fatalf("after looking again: got %q, again %v, %v, %d queries; want the page, 2 queries", b, again, err, queries)
	}
}

// The reader that ran the query answers before the fill ends, and a reader
// arriving during the fill gets the page read, from memory, as a HIT: so
// the first reader's next read is a HIT whether or not the fill landed.
func TestMissFlightAnswersBeforeTheFill(t *testing.T) {
	var f missFlight
	ctx := context.Background()
	queries := 0
	query := func(context.Context) ([]byte, error) { queries++; return []byte("page"), nil }
	release, fillDone := make(chan struct{}), make(chan struct{})
	fill := func(context.Context, []byte) { <-release; close(fillDone) }

	if b, st, _, err := f.do(ctx, "50:@1", f.fills(), query, fill); string(b) != "page" || st != Miss || err != nil {
		t.Fatalf("first miss, its fill held back: got %q, %s, %v; want the page, MISS", b, st, err)
	}
	if b, st, again, err := f.do(ctx, "50:@1", f.fills(), query, fill); string(b) != "page" || st != Hit || again || err != nil || queries != 1 {
		t.Fatalf("during the fill: got %q, %s, again %v, %v, %d queries; want the page from memory, HIT, 1 query", b, st, again, err, queries)
	}
	close(release)
	<-fillDone
}

// A failed query ends the flight at once: nothing to fill, and the next
// reader queries again.
func TestMissFlightFailedQueryEndsTheFlight(t *testing.T) {
	var f missFlight
	ctx := context.Background()
	fail := func(context.Context) ([]byte, error) { return nil, context.DeadlineExceeded }
	fill := func(context.Context, []byte) { t.Error("a failed query was filled") }
	if _, _, _, err := f.do(ctx, "50:@1", f.fills(), fail, fill); err == nil {
		t.Fatal("a failed query: got no error")
	}
	if len(f.calls) != 0 || f.fills() != 1 {
		t.Fatalf("after a failed query: %d flights held, %d ended; want 0 and 1", len(f.calls), f.fills())
	}
}

// A flight of another page, or of the same page in another generation,
// ending while a reader looked at Redis is no reason to look again: its
// fill cannot have put the page the reader missed.
func TestMissFlightLooksAgainOnlyForItsPage(t *testing.T) {
	var f missFlight
	ctx := context.Background()
	queries := 0
	query := func(context.Context) ([]byte, error) { queries++; return []byte("page"), nil }
	filled := make(chan struct{}, 4)
	fill := func(context.Context, []byte) { filled <- struct{}{} }

	before := f.fills() // a reader of 50:@2 looks at Redis
	f.do(ctx, "50:@1", f.fills(), query, fill)
	f.do(ctx, "20:@2", f.fills(), query, fill)
	<-filled
	<-filled
	for f.fills() != before+2 { // both flights end just after their fills
	}
	if b, st, again, err := f.do(ctx, "50:@2", before, query, fill); string(b) != "page" || st != Miss || again || err != nil || queries != 3 {
		t.Fatalf("after other pages' fills: got %q, %s, again %v, %v, %d queries; want the page queried, no second look", b, st, again, err, queries)
	}
}
