package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/techlist/techlist"
)

// decodeText reads the text of a submission from a JSON object
// {"text": "..."} or a form-urlencoded body, and validates it. The body is
// read up to limit bytes; a larger one is an ETooLarge error.
func decodeText(w http.ResponseWriter, r *http.Request, limit int64) (string, error) {
	mediaType, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil {
		return "", techlist.Errorf(techlist.EMediaType, "send the body as application/json or application/x-www-form-urlencoded")
	}
	if mediaType != "application/json" && mediaType != "application/x-www-form-urlencoded" {
		return "", techlist.Errorf(techlist.EMediaType, "unsupported content type %q; send application/json or application/x-www-form-urlencoded", mediaType)
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") && !strings.EqualFold(cs, "utf8") {
		// The body is read as UTF-8 whatever the label says; a body in
		// another charset would be refused as invalid UTF-8 or misread.
		return "", techlist.Errorf(techlist.EMediaType, "charset %q is not supported; send the body as UTF-8", clip(cs, 32))
	}
	if enc := contentCoding(r.Header); enc != "" {
		// RFC 9110 15.5.16: an unsupported content coding is a 415. Read
		// as it is, a compressed body would be refused as invalid UTF-8.
		return "", techlist.Errorf(techlist.EMediaType, "Content-Encoding %q is not supported; send the body uncompressed", clip(enc, 32))
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return "", techlist.Errorf(techlist.ETooLarge, "the body is larger than %d bytes", limit)
		}
		return "", techlist.Invalid("", "the body could not be read")
	}
	var text string
	if mediaType == "application/json" {
		text, err = textFromJSON(body)
	} else {
		text, err = textFromForm(body)
	}
	if err != nil {
		return "", err
	}
	return techlist.ValidateText(text)
}

// contentCoding returns the first coding other than identity that the
// request's Content-Encoding lines name, in any of them, or "".
func contentCoding(h http.Header) string {
	for _, line := range h.Values("Content-Encoding") {
		for coding := range strings.SplitSeq(line, ",") {
			if c := strings.TrimSpace(coding); c != "" && !strings.EqualFold(c, "identity") {
				return c
			}
		}
	}
	return ""
}

// textFromJSON accepts exactly one object with exactly one string member
// "text". Unknown, duplicated or mistyped members, and anything after the
// object, are refused rather than guessed at.
func textFromJSON(body []byte) (string, error) {
	// encoding/json would quietly turn invalid UTF-8 into U+FFFD; refuse it
	// instead, so what is stored is what was sent.
	if !utf8.Valid(body) {
		return "", techlist.Invalid("text", "text must be valid UTF-8")
	}
	if text, ok := textFromJSONFast(body); ok {
		return text, nil
	}
	return textFromJSONTokens(body)
}

// textFromJSONTokens is textFromJSON's full reading, with encoding/json's
// tokenizer, for any body the fast path does not take.
func textFromJSONTokens(body []byte) (string, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	bad := func(msg string) error { return techlist.Invalid("", msg) }
	tok, err := dec.Token()
	if err != nil {
		return "", bad("the body is not valid JSON")
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return "", bad(`the body must be a JSON object like {"text": "Go"}`)
	}
	var text *string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return "", bad("the body is not valid JSON")
		}
		key := tok.(string) // object keys are always strings
		if key != "text" {
			return "", techlist.Invalidf(key, "unknown field %q; the only field is \"text\"", key)
		}
		if text != nil {
			return "", techlist.Invalid("text", `field "text" is given more than once`)
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return "", bad("the body is not valid JSON")
		}
		var s string
		if len(raw) == 0 || raw[0] != '"' || json.Unmarshal(raw, &s) != nil {
			return "", techlist.Invalid("text", "text must be a JSON string")
		}
		if strings.ContainsRune(s, utf8.RuneError) && techlist.HasLoneSurrogate(raw) {
			// A lone surrogate escape such as \ud800, which has no UTF-8 form.
			return "", techlist.Invalid("text", "text must be valid UTF-8 (a lone surrogate escape was sent)")
		}
		text = &s
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return "", bad("the body is not valid JSON")
	}
	if _, err := dec.Token(); err != io.EOF {
		return "", bad("unexpected data after the JSON object")
	}
	if text == nil {
		return "", techlist.Invalid("text", "text is required")
	}
	return *text, nil
}

// textFromJSONFast reads the body every client sends, {"text":"..."} with
// JSON whitespace anywhere between tokens and no escape or control
// character in the string, without encoding/json's tokenizer (which was
// most of a POST's decoding). Any other body, valid or not, is left to
// textFromJSON's full reading (ok false). body is valid UTF-8, so the
// string's bytes are its value, as encoding/json would give them.
func textFromJSONFast(body []byte) (text string, ok bool) {
	i := 0
	skip := func() {
		for i < len(body) && (body[i] == ' ' || body[i] == '\t' || body[i] == '\n' || body[i] == '\r') {
			i++
		}
	}
	expect := func(lit string) bool {
		skip()
		if !bytes.HasPrefix(body[i:], []byte(lit)) {
			return false
		}
		i += len(lit)
		return true
	}
	if !expect("{") || !expect(`"text"`) || !expect(":") || !expect(`"`) {
		return "", false
	}
	start := i
	for ; i < len(body) && body[i] != '"'; i++ {
		if body[i] == '\\' || body[i] < 0x20 {
			return "", false
		}
	}
	if i == len(body) {
		return "", false
	}
	text = string(body[start:i])
	i++
	if !expect("}") {
		return "", false
	}
	skip()
	return text, i == len(body)
}

// textFromForm takes the one "text" field of a form; other fields (a submit
// button's name, say) are ignored.
func textFromForm(body []byte) (string, error) {
	values, err := url.ParseQuery(string(body))
	if err != nil {
		return "", techlist.Invalid("", fmt.Sprintf("the form body is malformed: %v", err))
	}
	texts := values["text"]
	switch len(texts) {
	case 0:
		return "", techlist.Invalid("text", "text is required")
	case 1:
		return texts[0], nil
	default:
		return "", techlist.Invalid("text", `field "text" is given more than once`)
	}
}
