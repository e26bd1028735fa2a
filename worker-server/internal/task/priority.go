// Package task is the worker's background task: the priority analysis of a
// submitted tech. It replaces the seed's coin flip with a result that is
// the same for the same text, so a redelivered message gets the same answer.
package task

import (
	"context"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/techlist/techlist"
)

// Words that decide the priority outright, checked as substrings of the
// lower-cased text: high first, then low.
var (
	highWords = []string{"security", "vulnerab", "cve", "outage", "urgent", "critical", "incident", "breach", "crash", "data loss"}
	lowWords  = []string{"typo", "docs", "documentation", "readme", "cosmetic", "someday", "nice to have", "idea"}
)

// Priority analyses text: a text naming an urgent matter is high, one naming
// a cosmetic one low, and any other falls into one of the three by a hash of
// its normalised form (case and spacing ignored), which spreads texts evenly
// and never changes between runs.
func Priority(text string) techlist.Priority {
	norm := text
	if !normalised(text) {
		norm = strings.Join(strings.Fields(strings.ToLower(text)), " ")
	}
	for _, w := range highWords {
		if strings.Contains(norm, w) {
			return techlist.PriorityHigh
		}
	}
	for _, w := range lowWords {
		if strings.Contains(norm, w) {
			return techlist.PriorityLow
		}
	}
	return [...]techlist.Priority{techlist.PriorityLow, techlist.PriorityMedium, techlist.PriorityHigh}[fnv32a(norm)%3]
}

// normalised reports whether text is already its normal form: ASCII with
// no upper-case letter and no white space but single spaces between
// words. Most texts are, and then Priority allocates nothing (three
// allocations a row showed in the worker's profile while draining).
func normalised(text string) bool {
	if text == "" {
		return true
	}
	if text[0] == ' ' || text[len(text)-1] == ' ' {
		return false
	}
	for i := 0; i < len(text); i++ {
		switch c := text[i]; {
		case c >= utf8.RuneSelf, 'A' <= c && c <= 'Z', c == ' ' && text[i-1] == ' ':
			return false
		case c == '\t', c == '\n', c == '\v', c == '\f', c == '\r':
			return false
		}
	}
	return true
}

// fnv32a is hash/fnv's 32-bit FNV-1a of s, without the allocations of
// the hash.Hash interface.
func fnv32a(s string) uint32 {
	const offset, prime = 2166136261, 16777619
	h := uint32(offset)
	for i := 0; i < len(s); i++ {
		h ^= uint32(s[i])
		h *= prime
	}
	return h
}

// Analyser runs the task with a simulated cost, so the asynchrony of the
// architecture is visible: the api-server answers at once, the row appears
// a little later.
type Analyser struct {
	Cost time.Duration
}

// Analyse returns the priority of text after the task's cost has passed,
// or ctx's error if it ends first.
func (a Analyser) Analyse(ctx context.Context, text string) (techlist.Priority, error) {
	if a.Cost > 0 {
		t := time.NewTimer(a.Cost)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-t.C:
		}
	}
	return Priority(text), nil
}
