package cacheaside_test

import (
	"context"
	"strings"
	"testing"

	"github.com/techlist/techlist"

	"github.com/techlist/api-server/internal/cacheaside"
)

func pageOf(text string) techlist.Page {
	t := aTech()
	t.Text = text
	return techlist.Page{Data: []techlist.Tech{t}}
}

// Where the replica is read, and where it is not: a page that will be
// cached comes from the primary, so the cache never keeps a lagging page.
func TestReplicaRouting(t *testing.T) {
	ctx := context.Background()
	primary := &fakeStore{page: pageOf("primary"), techs: map[string]techlist.Tech{}}
	replica := &fakeStore{page: pageOf("replica"), techs: map[string]techlist.Tech{}}

	r := cacheaside.NewReader(newFakeCache(), primary, nil, discard(), nil)
	r.UseReplica(replica)
	if b, status, _ := r.List(ctx, 50, ""); status != cacheaside.Miss || !contains(b, "primary") {
		t.Errorf("miss that fills the cache: got %s %s, want the primary's page", status, b)
	}

	down := newFakeCache()
	down.pageErr = errDown
	r = cacheaside.NewReader(down, primary, nil, discard(), nil)
	r.UseReplica(replica)
	if b, status, _ := r.List(ctx, 50, ""); status != cacheaside.Bypass || !contains(b, "replica") {
		t.Errorf("read with Redis down: got %s %s, want the replica's page", status, b)
	}
	replica.listErr = errDown
	if b, status, err := r.List(ctx, 50, ""); err != nil || status != cacheaside.Bypass || !contains(b, "primary") {
		t.Errorf("read with Redis and the replica down: got %s %s %v, want the primary's page", status, b, err)
	}
}

func TestReplicaTechFallsBackToThePrimary(t *testing.T) {
	ctx := context.Background()
	tech := aTech()
	primary := &fakeStore{techs: map[string]techlist.Tech{tech.ID: tech}}
	replica := &fakeStore{techs: map[string]techlist.Tech{}} // lagging: not there yet
	r := cacheaside.NewReader(newFakeCache(), primary, nil, discard(), nil)
	r.UseReplica(replica)
	res, err := r.Tech(ctx, tech.ID)
	if err != nil || res.Pending || !contains(res.JSON, tech.ID) {
		t.Fatalf("tech the replica lacks: got %+v, %v; want it from the primary", res, err)
	}
	if replica.getCalls != 1 || primary.getCalls != 1 {
		t.Errorf("calls: replica %d, primary %d; want 1 and 1", replica.getCalls, primary.getCalls)
	}
	other := aTech()
	other.ID = "01890a5d-ac96-774b-bcce-b302099a8058"
	replica.techs[other.ID] = other
	if res, err := r.Tech(ctx, other.ID); err != nil || !contains(res.JSON, other.ID) || primary.getCalls != 1 {
		t.Errorf("tech on the replica: got %+v, %v with %d primary reads; want it from the replica alone", res, err, primary.getCalls)
	}
}

func contains(b []byte, s string) bool { return strings.Contains(string(b), s) }
