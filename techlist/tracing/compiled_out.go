//go:build notracing

package tracing

// CompiledIn: see compiled_in.go.
const CompiledIn = false
