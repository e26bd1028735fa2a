//go:build !linux

package rediscluster

import "os/exec"

// setDeathSignal does nothing where the kernel has no parent-death signal:
// there only Stop ends the nodes.
func setDeathSignal(*exec.Cmd) {}
