package techlist

import (
	"fmt"
	"time"
)

// Priority is the result of the worker's analysis of a submitted tech.
type Priority string

const (
	PriorityLow    Priority = "low"
	PriorityMedium Priority = "medium"
	PriorityHigh   Priority = "high"
)

// Valid reports whether p is one of the three known priorities.
func (p Priority) Valid() bool {
	switch p {
	case PriorityLow, PriorityMedium, PriorityHigh:
		return true
	}
	return false
}

// Tech is a stored record, as the API returns it.
//
// CreatedAt is when the worker committed the row; SubmittedAt is when the
// api-server accepted it (the id is ordered by that time).
type Tech struct {
	ID          string    `json:"id" db:"id"`
	Text        string    `json:"text" db:"text"`
	Priority    Priority  `json:"priority" db:"priority"`
	CreatedAt   time.Time `json:"created_at" db:"created_at"`
	SubmittedAt time.Time `json:"submitted_at" db:"submitted_at"`
}

// SeedText renders a tech the way the seed project's /get route did.
func (t Tech) SeedText() string {
	return fmt.Sprintf("%s - priority (%s)", t.Text, t.Priority)
}

// Page is one page of the newest-first list.
//
// NextCursor is nil on the last page; otherwise it is passed back as the
// cursor query parameter to read the next page.
type Page struct {
	Data       []Tech  `json:"data"`
	NextCursor *string `json:"next_cursor"`
}
