//go:build !notracing

package tracing

// CompiledIn is false in a build with -tags notracing. Such a build has
// none of tracing's per-request hooks, not even with tracing off: the
// bench builds one to measure what tracing off costs (bench/tracing.go).
// Nothing else uses the tag.
const CompiledIn = true
