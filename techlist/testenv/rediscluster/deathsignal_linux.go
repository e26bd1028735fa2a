package rediscluster

import (
	"os/exec"
	"syscall"
)

// setDeathSignal has the kernel kill the node when the program that
// started it dies, even by SIGKILL, where no deferred Stop runs.
func setDeathSignal(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
