package techlist

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxTextLength is the longest text accepted, counted in Unicode code points.
const MaxTextLength = 200

// ValidateText trims text and checks it against the contract: 1 to
// MaxTextLength characters of valid UTF-8 with no control characters, at
// least one of them visible (see visible), and none of the bidirectional
// embedding, override or isolate controls U+202A–U+202E and U+2066–U+2069,
// which reorder what is shown around them (a Trojan Source text reads
// differently from what it is). Other invisible characters are kept where
// they belong, such as the zero-width joiner inside an emoji sequence or
// the marks U+200E and U+200F in right-to-left text.
// It returns the trimmed text, which is what gets stored.
func ValidateText(text string) (string, error) {
	if !utf8.ValidString(text) {
		return "", Invalid("text", "text must be valid UTF-8")
	}
	text = strings.TrimSpace(text)
	if text == "" {
		return "", Invalid("text", "text is required")
	}
	if n := utf8.RuneCountInString(text); n > MaxTextLength {
		return "", Invalidf("text", "text must be at most %d characters (got %d)", MaxTextLength, n)
	}
	seen := false
	for _, r := range text {
		if unicode.IsControl(r) {
			return "", Invalid("text", "text must not contain control characters such as NUL, tab or newline")
		}
		if bidiControl(r) {
			return "", Invalid("text", "text must not contain bidirectional embedding, override or isolate controls (U+202A to U+202E, U+2066 to U+2069)")
		}
		seen = seen || visible(r)
	}
	if !seen {
		return "", Invalid("text", "text must contain at least one visible character")
	}
	return text, nil
}

// bidiControl reports whether r is a bidirectional embedding, override or
// isolate control: LRE, RLE, PDF, LRO, RLO, LRI, RLI, FSI or PDI.
func bidiControl(r rune) bool {
	return '\u202A' <= r && r <= '\u202E' || '\u2066' <= r && r <= '\u2069'
}

// visible reports whether r shows as something: a letter, mark, number,
// punctuation or symbol that is not default-ignorable (the Hangul fillers
// U+3164 and U+FFA0, the combining grapheme joiner and the variation
// selectors are letters or marks that show nothing). Spaces and format
// characters (U+200B, U+2060, U+FEFF, U+200E, …) are not.
func visible(r rune) bool {
	return unicode.In(r, unicode.L, unicode.M, unicode.N, unicode.P, unicode.S) &&
		!unicode.In(r, unicode.Other_Default_Ignorable_Code_Point, unicode.Variation_Selector)
}

// ValidID reports whether id has the canonical form of the UUIDs the
// api-server makes: 36 characters, lowercase hex in 8-4-4-4-12 groups.
func ValidID(id string) bool {
	if len(id) != 36 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
				return false
			}
		}
	}
	return true
}

// ValidV7ID reports whether id is a UUIDv7 in canonical form, as the
// api-server makes them: ValidID, version nibble 7 and the RFC 9562 (RFC
// 4122) variant (10xx). The worker stores only such ids. URLs are checked
// with ValidID alone: any other well-formed id is simply not found (404).
func ValidV7ID(id string) bool {
	return ValidID(id) && id[14] == '7' && strings.IndexByte("89ab", id[19]) >= 0
}

// ValidRequestID reports whether id is acceptable as a request id carried
// between the services: 1 to 64 characters of letters, digits and
// . _ : / - (what chi, load balancers and tracing systems make).
func ValidRequestID(id string) bool {
	if len(id) == 0 || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("._:/-", c) >= 0) {
			return false
		}
	}
	return true
}
