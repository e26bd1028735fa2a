package consumer

import (
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/techlist/techlist"
	"github.com/techlist/techlist/testenv"
)

// logLines returns the lines of logs whose message is msg.
func logLines(logs *testenv.Buffer, msg string) []string {
	var found []string
	for line := range strings.SplitSeq(logs.String(), "\n") {
		if strings.Contains(line, " msg="+msg+" ") || strings.Contains(line, ` msg="`+msg+`" `) {
			found = append(found, line)
		}
	}
	return found
}

// At info a batch is one line; the per-record lines, with each record's
// request id, are debug lines.
func TestLogsALinePerBatchAndPerRecordAtDebug(t *testing.T) {
	for _, tt := range []struct {
		level     slog.Level
		perRecord int
	}{{slog.LevelInfo, 0}, {slog.LevelDebug, 3}} {
		t.Run(tt.level.String(), func(t *testing.T) {
			h := newHarness(t, Config{Concurrency: 4, BatchSize: 3, BatchWait: time.Hour, DrainTimeout: wait}, nil, nil)
			logs := &testenv.Buffer{}
			h.cons.logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: tt.level}))
			h.start(t)
			for i := range 3 {
				env := techlist.NewEnvelope(testID(i), fmt.Sprintf("tech %d", i), fixedNow)
				env.RequestID = fmt.Sprintf("req-%d", i)
				b, err := env.Encode()
				if err != nil {
					t.Fatal(err)
				}
				h.src.send(t, b)
			}
			testenv.Eventually(t, "the batch's line", func() bool { return len(logLines(logs, "stored a batch")) == 1 })
			if err := h.stop(t); err != nil {
				t.Fatalf("Run: got %v, want nil", err)
			}
			batch := logLines(logs, "stored a batch")
			if len(batch) != 1 || !strings.Contains(batch[0], "rows=3") || !strings.Contains(batch[0], "first_id=") {
				t.Errorf("got batch lines %q, want one with rows=3 and first_id", batch)
			}
			records := logLines(logs, "stored")
			if len(records) != tt.perRecord {
				t.Fatalf("got %d per-record lines at %s, want %d: %q", len(records), tt.level, tt.perRecord, records)
			}
			for i, line := range records {
				if !strings.Contains(line, "request_id=req-") || !strings.Contains(line, "level=DEBUG") {
					t.Errorf("record line %d: %q, want a DEBUG line with its request_id", i, line)
				}
			}
		})
	}
}
