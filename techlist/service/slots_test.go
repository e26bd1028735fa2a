package service

import "testing"

func TestSlotsHoldAtMostMax(t *testing.T) {
	s := NewSlots(2)
	if !s.Take() || !s.Take() {
		t.Fatal("two slots of two: refused")
	}
	if s.Take() {
		t.Fatal("a third slot of two: taken")
	}
	s.Give()
	if !s.Take() {
		t.Fatal("a slot given back: not taken again")
	}
}
