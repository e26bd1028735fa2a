package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/techlist/techlist/testenv"
	"github.com/techlist/techlist/testenv/stack"
)

// Every metric the provisioned Grafana dashboard queries is one the running
// servers export, so the dashboard cannot silently show empty panels.
func TestDashboardQueriesExportedMetrics(t *testing.T) {
	t.Parallel()
	root, err := stack.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(root, "deploy", "grafana", "dashboards", "techlist.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("dashboard JSON: %v", err)
	}

	s := startStack(t, map[string]string{"QUEUE_MODE": "streams", "TASK_COST": "0"})
	resp, err := http.Post(s.APIURL+"/api/v1/techs", "application/json", strings.NewReader(`{"text":"metrics"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var list listBody
	testenv.Eventually(t, "the tech stored", func() bool {
		list = listBody{}
		getJSON(t, s.APIURL+"/api/v1/techs", &list)
		return len(list.Data) == 1
	})
	exported := scrape(t, s.APIURL+"/metrics") + scrape(t, s.WorkerURL+"/metrics")

	// Names in PromQL that are not metrics: functions, keywords, labels.
	notMetrics := map[string]bool{"histogram_quantile": true}
	name := regexp.MustCompile(`[a-z][a-z0-9]*(?:_[a-z0-9]+)+`)
	checked := 0
	for _, p := range dash.Panels {
		for _, tgt := range p.Targets {
			for _, m := range name.FindAllString(tgt.Expr, -1) {
				if notMetrics[m] {
					continue
				}
				checked++
				if !strings.Contains(exported, "\n"+m) {
					t.Errorf("panel %q queries %s, which neither server exports", p.Title, m)
				}
			}
		}
	}
	if checked < 10 {
		t.Errorf("checked %d metric names in the dashboard, want at least 10", checked)
	}
}

func scrape(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return "\n" + string(b)
}
