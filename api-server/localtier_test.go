package main

import (
	"context"
	"encoding/json"
	"net/http"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/techlist/techlist"
	"github.com/techlist/techlist/mysql"
	"github.com/techlist/techlist/redis"
	"github.com/techlist/techlist/testenv"
)

var localHits = regexp.MustCompile(`(?m)^api_cache_local_hits_total (\d+)`)

// The in-process tier is on by default, answers repeated reads, and is
// dropped by the worker's tech.created event: the next read shows the new
// row although the tier's TTL has not passed.
func TestRunServesRepeatedReadsFromMemory(t *testing.T) {
	rdb, names := testenv.Redis(t)
	env := testEnv(t, names)
	env["LOCAL_CACHE_TTL"] = "1h" // only the event can drop it in this test
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- run(ctx, nil, mapenv(env), &syncBuffer{}, &syncBuffer{}) }()
	base := "http://127.0.0.1:" + env["PORT"]
	testenv.WaitStatus(t, base+"/healthz", http.StatusOK, 30*time.Second, errc)

	// The first read misses and fills the cache after its answer, so the
	// reads after it come from memory once that fill has landed (on a
	// loaded machine, not always by the third read).
	reads := 0
	for deadline := time.Now().Add(10 * time.Second); ; {
		if a := request(t, "GET", base+"/api/v1/techs", "", ""); a.status != 200 {
			t.Fatalf("GET: got %d", a.status)
		}
		reads++
		m := localHits.FindStringSubmatch(string(request(t, "GET", base+"/metrics", "", "").body))
		if m == nil {
			t.Fatal("no api_cache_local_hits_total in /metrics")
		}
		if n, _ := strconv.Atoi(m[1]); n >= 1 && reads >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("api_cache_local_hits_total after %d reads over 10 s: got %s, want at least 1", reads, m[1])
		}
	}

	// What the worker does after a commit: the row, the invalidation, the event.
	mcfg := mysql.Config{Host: env["MYSQL_HOST"], Port: 3306, User: env["MYSQL_USERNAME"], Password: env["MYSQL_PASSWORD"],
		Database: env["MYSQL_DATABASE"], Table: "techlist"}
	mcfg.Port, _ = strconv.Atoi(env["MYSQL_PORT"])
	db, err := mysql.Open(ctx, mcfg)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	id, _ := uuid.NewV7()
	tech := techlist.Tech{ID: id.String(), Text: "after the event", Priority: techlist.PriorityLow, SubmittedAt: mysql.Now(), CreatedAt: mysql.Now()}
	if _, err := mysql.NewStore(db, "techlist").Insert(ctx, []techlist.Tech{tech}); err != nil {
		t.Fatal(err)
	}
	if err := redis.NewCache(rdb, names.Prefix, time.Minute).InvalidateLists(ctx); err != nil {
		t.Fatal(err)
	}
	events := redis.NewEventPublisher(rdb, redis.EventsChannel(names.Channel))
	deadline := time.Now().Add(10 * time.Second)
	for {
		// Sent again each round: the server may still be subscribing.
		if err := events.PublishCreated(ctx, []techlist.Tech{tech}); err != nil {
			t.Fatal(err)
		}
		var page struct{ Data []techlist.Tech }
		json.Unmarshal(request(t, "GET", base+"/api/v1/techs", "", "").body, &page)
		if len(page.Data) == 1 && page.Data[0].ID == tech.ID {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the new row was not listed 10s after the event (the tier's TTL is an hour): %+v", page.Data)
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-errc; err != nil {
		t.Errorf("run: %v", err)
	}
}
