package service

import "testing"

func TestSlotsHoldAtMostMax(t *testing.T) {
	s := NewSlots(2)
	for i := range 2 {
		if !s.Take() {
			t.Fatalf("slot %d of two: refused", i+1)
		}
	}
	if s.Take() {
		t.Fatal("a third slot of two: taken")
	}
	s.Give()
	if !s.Take() {
		t.Fatal("a slot given back: not taken again")
	}
}
