//go:build notracing

package config

const traceLogs = false
