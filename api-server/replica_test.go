package main

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/techlist/techlist"
	"github.com/techlist/techlist/mysql"
	"github.com/techlist/techlist/testenv"
)

// With MYSQL_READ_HOST set, reads work through the replica and fall back
// to the primary when the replica does not answer. Redis is pointed where
// nothing listens, so every list read is a BYPASS, the read the replica
// serves.
func TestRunReadsFromAReplicaAndFallsBack(t *testing.T) {
	_, names := testenv.Redis(t)
	for name, port := range map[string]string{
		"replica up":   "", // the same server stands in for a replica
		"replica down": strconv.Itoa(testenv.FreePort(t)),
	} {
		t.Run(name, func(t *testing.T) {
			env := testEnv(t, names)
			env["REDIS_ADDRS"] = "127.0.0.1:" + strconv.Itoa(testenv.FreePort(t))
			env["MYSQL_READ_HOST"] = env["MYSQL_HOST"]
			env["MYSQL_READ_PORT"] = env["MYSQL_PORT"]
			if port != "" {
				env["MYSQL_READ_PORT"] = port
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			errc := make(chan error, 1)
			go func() { errc <- run(ctx, nil, mapenv(env), &syncBuffer{}, &syncBuffer{}) }()
			base := "http://127.0.0.1:" + env["PORT"]
			testenv.WaitStatus(t, base+"/healthz", http.StatusOK, 30*time.Second, errc)

			mcfg := mysql.Config{Host: env["MYSQL_HOST"], User: env["MYSQL_USERNAME"], Password: env["MYSQL_PASSWORD"],
				Database: env["MYSQL_DATABASE"], Table: "techlist"}
			mcfg.Port, _ = strconv.Atoi(env["MYSQL_PORT"])
			store, err := mysql.OpenStore(ctx, mcfg)
			if err != nil {
				t.Fatal(err)
			}
			defer store.Close()
			id, _ := uuid.NewV7()
			tech := techlist.Tech{ID: id.String(), Text: "replicated", Priority: techlist.PriorityLow, SubmittedAt: mysql.Now(), CreatedAt: mysql.Now()}
			if _, err := store.Insert(ctx, []techlist.Tech{tech}); err != nil {
				t.Fatal(err)
			}

			a := request(t, "GET", base+"/api/v1/techs", "", "")
			var page struct{ Data []techlist.Tech }
			json.Unmarshal(a.body, &page)
			if a.status != 200 || a.header.Get("X-Cache") != "BYPASS" || len(page.Data) != 1 || page.Data[0].ID != tech.ID {
				t.Errorf("list: got %d %s %s, want 200 BYPASS with the row", a.status, a.header.Get("X-Cache"), a.body)
			}
			if a := request(t, "GET", base+"/api/v1/techs/"+tech.ID, "", ""); a.status != 200 {
				t.Errorf("one tech: got %d %s, want 200", a.status, a.body)
			}
			cancel()
			if err := <-errc; err != nil {
				t.Errorf("run: %v", err)
			}
		})
	}
}
