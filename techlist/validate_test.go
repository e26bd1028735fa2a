package techlist

import (
	"strings"
	"testing"
)

func TestValidateText(t *testing.T) {
	tests := []struct {
		name, in, want string
		ok             bool
	}{
		{"plain", "Go", "Go", true},
		{"trimmed", "  Redis \t", "Redis", true},
		{"200 chars", strings.Repeat("a", 200), strings.Repeat("a", 200), true},
		{"200 emoji", strings.Repeat("🚀", 200), strings.Repeat("🚀", 200), true},
		{"201 chars", strings.Repeat("a", 201), "", false},
		{"empty", "", "", false},
		{"spaces only", "   \n\t ", "", false},
		{"NUL", "a\x00b", "", false},
		{"inner newline", "a\nb", "", false},
		{"escape char", "a\x1bb", "", false},
		{"DEL", "a\x7fb", "", false},
		{"invalid UTF-8", "a\xffb", "", false},
		{"html kept verbatim", "<script>alert(1)</script>", "<script>alert(1)</script>", true},
		{"sql kept verbatim", "'; DROP TABLE techlist; --", "'; DROP TABLE techlist; --", true},
		{"right-to-left", "שלום עולם", "שלום עולם", true},
		{"arabic", "مرحبا", "مرحبا", true},
		{"CJK", "数据库 キャッシュ", "数据库 キャッシュ", true},
		{"emoji with ZWJ", "👩\u200d💻", "👩\u200d💻", true},
		{"emoji with variation selector", "\u2764\ufe0f", "\u2764\ufe0f", true},
		{"flag", "🇳🇱", "🇳🇱", true},
		{"combining accent", "e\u0301", "e\u0301", true},
		{"left-to-right mark in Hebrew", "Go \u200eשלום", "Go \u200eשלום", true},
		{"soft hyphen inside a word", "data\u00adbase", "data\u00adbase", true},
		{"zero width space only", "\u200b", "", false},
		{"byte order mark only", "\ufeff", "", false},
		{"word joiners only", "\u2060\u2060", "", false},
		{"left-to-right mark only", "\u200e", "", false},
		{"right-to-left override only", "\u202e", "", false},
		{"right-to-left override inside", "a\u202eb", "", false},
		{"left-to-right embedding", "a\u202ab", "", false},
		{"pop directional formatting", "a\u202cb", "", false},
		{"right-to-left isolate", "a\u2067b\u2069", "", false},
		{"first strong isolate", "a\u2068b", "", false},
		{"hangul filler only", "\u3164", "", false},
		{"variation selector only", "\ufe0f", "", false},
		{"combining grapheme joiner only", "\u034f", "", false},
		{"zero width joiners only", "\u200d\u200d", "", false},
		{"ideographic space and ZWSP", "\u3000\u200b\u3000", "", false},
		{"tag characters only", "\U000E0041\U000E0042", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ValidateText(tt.in)
			if tt.ok {
				if err != nil || got != tt.want {
					t.Errorf("got %q, %v; want %q, nil", got, err, tt.want)
				}
				return
			}
			if ErrorCode(err) != EInvalid {
				t.Fatalf("got %q, %v; want an %s error", got, err, EInvalid)
			}
			if e := err.(*Error); e.Field != "text" || e.Message == "" {
				t.Errorf("got field %q message %q, want field text and a message", e.Field, e.Message)
			}
		})
	}
}

func TestValidID(t *testing.T) {
	for id, want := range map[string]bool{
		"01890a5d-ac96-774b-bcce-b302099a8057": true,
		"01890A5D-AC96-774B-BCCE-B302099A8057": false,
		"01890a5d-ac96-774b-bcce-b302099a805":  false,
		"01890a5dxac96-774b-bcce-b302099a8057": false,
		"' OR 1=1 --                         ": false,
		"":                                     false,
	} {
		if got := ValidID(id); got != want {
			t.Errorf("ValidID(%q): got %v, want %v", id, got, want)
		}
	}
}
