package stack

import (
	"os/exec"
	"syscall"
)

// followParent makes the instance get SIGTERM should this process die
// without stopping it, so that no service outlives its stack.
func followParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}
