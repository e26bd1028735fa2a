// Package task is the worker's background task: the priority analysis of a
// submitted tech. It replaces the seed's coin flip with a result that is
// the same for the same text, so a redelivered message gets the same answer.
package task

import (
	"context"
	"hash/fnv"
	"strings"
	"time"

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
	norm := strings.Join(strings.Fields(strings.ToLower(text)), " ")
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
	h := fnv.New32a()
	h.Write([]byte(norm))
	return [...]techlist.Priority{techlist.PriorityLow, techlist.PriorityMedium, techlist.PriorityHigh}[h.Sum32()%3]
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
