//go:build !notracing

package config

// traceLogs is false in a build with -tags notracing (see
// tracing.CompiledIn): the logger then has no traceHandler.
const traceLogs = true
