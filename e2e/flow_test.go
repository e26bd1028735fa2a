package e2e

import (
	"encoding/json"
	"html"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/techlist/techlist"
	"github.com/techlist/techlist/testenv"
)

type listBody struct {
	Data       []techlist.Tech `json:"data"`
	NextCursor *string         `json:"next_cursor"`
	Cached     bool            `json:"cached"`
}

// getJSON GETs url and decodes a 200 answer into v, returning X-Cache.
func getJSON(t *testing.T, url string, v any) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: got %s %s, want 200", url, resp.Status, b)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("GET %s: decode %s: %v", url, b, err)
	}
	return resp.Header.Get("X-Cache")
}

func getPage(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: got %s, want 200", url, resp.Status)
	}
	return string(b)
}

func contains(techs []techlist.Tech, id string) (techlist.Tech, bool) {
	for _, t := range techs {
		if t.ID == id {
			return t, true
		}
	}
	return techlist.Tech{}, false
}

// A browser user adds a tech through the client-app's form; the api-server
// accepts it, the worker stores it, and it shows in the API and the page.
// The first read that shows it comes from MySQL (the worker invalidated the
// cache), the next from the cache.
func TestFormToListThroughAllThreeServices(t *testing.T) {
	t.Parallel()
	s := startStack(t, nil)
	stored := watchStored(t, s)
	text := "e2e <b>Go</b> & 'quotes' " + testenv.Suffix()

	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noRedirect.PostForm(s.ClientURL+"/techs", url.Values{"text": {"  " + text + "  "}})
	if err != nil {
		t.Fatalf("POST the form: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("POST the form: got %s, want 303", resp.Status)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || loc.Path != "/" || !techlist.ValidID(loc.Query().Get("queued")) {
		t.Fatalf("redirect: got Location %q, want /?queued=<id>", resp.Header.Get("Location"))
	}
	id := loc.Query().Get("queued")

	// Once announced, the row is committed and the cache invalidated, and
	// nothing has read since: the first read comes from MySQL.
	stored(id)
	var first listBody
	firstCache := getJSON(t, s.APIURL+"/api/v1/techs", &first)
	if _, ok := contains(first.Data, id); !ok {
		t.Fatalf("GET /api/v1/techs after the tech was stored does not list it")
	}
	if firstCache != "MISS" || first.Cached {
		t.Errorf("first read after the write: got X-Cache %q cached %v, want MISS false", firstCache, first.Cached)
	}
	var second listBody
	if got := getJSON(t, s.APIURL+"/api/v1/techs", &second); got != "HIT" || !second.Cached {
		t.Errorf("next read: got X-Cache %q cached %v, want HIT true", got, second.Cached)
	}
	tech, _ := contains(second.Data, id)
	if tech.Text != text || !tech.Priority.Valid() || tech.CreatedAt.Before(tech.SubmittedAt) {
		t.Errorf("stored tech: got %+v, want text %q, a priority, created after submitted", tech, text)
	}

	var one techlist.Tech
	getJSON(t, s.APIURL+"/api/v1/techs/"+id, &one)
	if one != tech {
		t.Errorf("GET /api/v1/techs/%s: got %+v, want %+v", id, one, tech)
	}

	page := getPage(t, s.ClientURL+"/")
	if !strings.Contains(page, html.EscapeString(text)) {
		t.Errorf("client page does not show the escaped text %q", html.EscapeString(text))
	}
	if strings.Contains(page, "<b>Go</b>") {
		t.Error("client page contains the raw markup <b>Go</b>, want it escaped")
	}
}

type seedList struct {
	IsCached bool `json:"isCached"`
	Data     []struct {
		ID   string `json:"id"`
		Text string `json:"text"`
	} `json:"data"`
}

// A client written for the seed posts to /create and reads /get.
func TestSeedRoutes(t *testing.T) {
	t.Parallel()
	s := startStack(t, nil)
	stored := watchStored(t, s)
	text := "seed client " + testenv.Suffix()

	resp, err := http.Post(s.APIURL+"/create", "application/json", strings.NewReader(`{"text":"`+text+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	var created struct {
		Message string `json:"message"`
		ID      string `json:"id"`
	}
	json.NewDecoder(resp.Body).Decode(&created)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted || !techlist.ValidID(created.ID) || created.Message == "" {
		t.Fatalf("POST /create: got %s %+v, want 202 with a message and an id", resp.Status, created)
	}

	stored(created.ID)
	var first seedList
	var item string
	getJSON(t, s.APIURL+"/get", &first)
	for _, d := range first.Data {
		if d.ID == created.ID {
			item = d.Text
		}
	}
	if first.IsCached {
		t.Error("first /get showing the tech: got isCached true, want false")
	}
	if !strings.HasPrefix(item, text+" - priority (") || !strings.HasSuffix(item, ")") {
		t.Errorf("/get text: got %q, want %q followed by its priority", item, text+" - priority (…)")
	}
	var second seedList
	getJSON(t, s.APIURL+"/get", &second)
	if !second.IsCached {
		t.Error("second /get: got isCached false, want true")
	}
	if body := getPage(t, s.APIURL+"/"); body != "OK!" {
		t.Errorf("GET /: got %q, want OK!", body)
	}
}
