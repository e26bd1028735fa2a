package task

import "testing"

func BenchmarkPriority(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		Priority("Redis Streams with consumer groups")
	}
}
