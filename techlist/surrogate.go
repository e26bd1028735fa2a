package techlist

import (
	"strconv"
	"unicode/utf16"
)

// HasLoneSurrogate reports whether the JSON raw (a string literal or a
// whole document), already known to be valid JSON, has a \u escape of a
// UTF-16 surrogate that is not half of a high-then-low pair. encoding/json
// decodes such an escape to U+FFFD, which is indistinguishable from a
// U+FFFD that was really sent, so the API and the worker refuse it.
func HasLoneSurrogate(raw []byte) bool {
	escape := func(i int) rune { // the code unit of the \uXXXX at raw[i:], or -1
		if i+6 > len(raw) || raw[i] != '\\' || raw[i+1] != 'u' {
			return -1
		}
		n, err := strconv.ParseUint(string(raw[i+2:i+6]), 16, 16)
		if err != nil {
			return -1
		}
		return rune(n)
	}
	for i := 0; i < len(raw); i++ {
		if raw[i] != '\\' {
			continue
		}
		r := escape(i)
		switch {
		case r < 0: // \" \\ \n and the like: skip the escaped byte
			i++
		case utf16.IsSurrogate(r):
			lo := escape(i + 6)
			if r >= 0xDC00 || lo < 0xDC00 || lo > 0xDFFF {
				return true
			}
			i += 11
		default:
			i += 5
		}
	}
	return false
}
