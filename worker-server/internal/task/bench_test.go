package task

import "testing"

func BenchmarkPriority(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		Priority("Redis Streams with consumer groups")
	}
}

func BenchmarkPriorityNormalised(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		Priority("backlog tech 4242")
	}
}
