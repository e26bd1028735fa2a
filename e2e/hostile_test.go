package e2e

import (
	"html"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/techlist/techlist"
	"github.com/techlist/techlist/testenv"
)

// Hostile and odd input through the client-app's form, with the real
// api-server and worker behind it. Each input is either refused with a 4xx
// page that keeps the user's text in the box, or accepted (303), stored
// exactly as sent (trimmed) and shown escaped. Never a 5xx.
func TestHostileFormInput(t *testing.T) {
	t.Parallel()
	s := startStack(t, map[string]string{"TASK_COST": "0", "PAGE_SIZE": "100"})

	long200 := strings.Repeat("é", 200)
	tests := []struct {
		name   string
		text   string
		status int // 303 accepted, else the refusal status
	}{
		{"plain", "Go", 303},
		{"surrounding spaces trimmed", "   Redis   ", 303},
		{"empty", "", 400},
		{"spaces only", "    ", 400},
		{"whitespace mix", " \t \r\n ", 400},
		{"200 two-byte characters", long200, 303},
		{"201 characters", strings.Repeat("a", 201), 400},
		{"200 emoji", strings.Repeat("🚀", 200), 303},
		{"NUL inside", "a\x00b", 400},
		{"tab inside", "a\tb", 400},
		{"newline inside", "a\nb", 400},
		{"CRLF header injection", "a\r\nSet-Cookie: pwned=1", 400},
		{"escape character", "a\x1b[31mred", 400},
		{"DEL", "a\x7f", 400},
		{"C1 control", "a\u0085b", 400},
		{"invalid UTF-8", "a\xff\xfeb", 400},
		{"lone surrogate bytes", "a\xed\xa0\x80b", 400},
		{"SQL quote", "O'Reilly", 303},
		{"SQL drop", "'; DROP TABLE techlist; --", 303},
		{"SQL union", "x' UNION SELECT password FROM mysql.user --", 303},
		{"SQL comment", "Go /* comment */ -- and # hash", 303},
		{"script tag", "<script>alert(1)</script>", 303},
		{"img onerror", `<img src=x onerror=alert(1)>`, 303},
		{"attribute breakout", `"><svg onload=alert(1)>`, 303},
		{"javascript URL", "javascript:alert(1)", 303},
		{"template syntax", "{{.}} ${7*7} <%= 7*7 %>", 303},
		{"log4shell string", "${jndi:ldap://example.invalid/a}", 303},
		{"ampersands and entities", "AT&T &amp; &lt;b&gt;", 303},
		{"backslashes and quotes", `C:\path\"quoted"\`, 303},
		{"percent and plus", "100% + 1 = 101%", 303},
		{"emoji with joiner", "👩‍💻 family 👨‍👩‍👧", 303},
		{"right-to-left", "مرحبا بالعالم", 303},
		{"RTL override inside (Trojan Source)", "abc\u202edcba", 400},
		{"RTL isolate inside", "a\u2067b\u2069", 400},
		{"zero width space only", "\u200b", 400},
		{"byte order mark only", "\ufeff", 400},
		{"word joiners only", "\u2060\u2060", 400},
		{"left-to-right mark only", "\u200e", 400},
		{"right-to-left override only", "\u202e", 400},
		{"left-to-right mark in Hebrew", "Go \u200eשלום", 303},
		{"combining marks", "Ṱ̴̨̺̗̥̯̞̩͖̝̆̊̄̅̐͐ͅe͎s͉t", 303},
		{"CJK", "数据库 データベース 데이터베이스", 303},
		{"replacement character sent as such", "a\ufffdb", 303},
	}

	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	accepted := map[string]string{} // id -> stored text expected
	for _, tt := range tests {
		resp, err := noRedirect.PostForm(s.ClientURL+"/techs", url.Values{"text": {tt.text}})
		if err != nil {
			t.Fatalf("%s: POST: %v", tt.name, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode >= 500 {
			t.Errorf("%s: got %s, want never a 5xx", tt.name, resp.Status)
			continue
		}
		if resp.StatusCode != tt.status {
			t.Errorf("%s: got %s, want %d", tt.name, resp.Status, tt.status)
			continue
		}
		if tt.status == http.StatusSeeOther {
			loc, _ := url.Parse(resp.Header.Get("Location"))
			id := loc.Query().Get("queued")
			if !techlist.ValidID(id) {
				t.Errorf("%s: redirect %q carries no id", tt.name, resp.Header.Get("Location"))
				continue
			}
			accepted[id] = strings.TrimSpace(tt.text)
			continue
		}
		page := string(body)
		if !strings.Contains(page, `id="text-error"`) {
			t.Errorf("%s: the refusal page shows no message beside the field", tt.name)
		}
		// Text the page can show as it is (valid UTF-8, no control
		// characters) is kept in the box, escaped, for the user to fix.
		showable := utf8.ValidString(tt.text) && strings.IndexFunc(tt.text, unicode.IsControl) < 0
		if showable && tt.text != "" && !strings.Contains(page, `value="`+html.EscapeString(tt.text)+`"`) {
			t.Errorf("%s: the user's text is not kept (escaped) in the box", tt.name)
		}
	}

	// Every accepted text is stored exactly as sent, and nothing else is.
	var list listBody
	testenv.Eventually(t, "every accepted tech stored", func() bool {
		list = listBody{}
		getJSON(t, s.APIURL+"/api/v1/techs?limit=100", &list)
		return len(list.Data) >= len(accepted)
	})
	if len(list.Data) != len(accepted) {
		t.Errorf("stored %d techs, want exactly the %d accepted", len(list.Data), len(accepted))
	}
	for _, tech := range list.Data {
		want, ok := accepted[tech.ID]
		if !ok {
			t.Errorf("stored %s (%q), which was never accepted", tech.ID, tech.Text)
			continue
		}
		if tech.Text != want {
			t.Errorf("stored %q, want %q", tech.Text, want)
		}
	}

	// And the page shows each escaped, with no markup of theirs in it.
	page := getPage(t, s.ClientURL+"/")
	for _, raw := range []string{"<script>alert(1)</script>", `<img src=x onerror=alert(1)>`, `"><svg onload=alert(1)>`} {
		if strings.Contains(page, raw) {
			t.Errorf("the page contains the raw markup %q", raw)
		}
	}
	if !strings.Contains(page, html.EscapeString("<script>alert(1)</script>")) {
		t.Error("the page does not show the escaped script text")
	}
}
