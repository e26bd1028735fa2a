package service

import "sync/atomic"

// Slots bounds how many of something are open at once (event streams, for
// one), so clients cannot hold an unbounded number of goroutines and
// buffers. The zero value has no room; use NewSlots.
type Slots struct {
	open atomic.Int64
	max  int64
}

// NewSlots returns room for max at once.
func NewSlots(max int) *Slots { return &Slots{max: int64(max)} }

// Take claims a slot; false when all are in use.
func (s *Slots) Take() bool {
	if s.open.Add(1) > s.max {
		s.open.Add(-1)
		return false
	}
	return true
}

// Give returns a slot Take claimed.
func (s *Slots) Give() { s.open.Add(-1) }
