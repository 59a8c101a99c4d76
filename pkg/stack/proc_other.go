//go:build !linux

package stack

import "os/exec"

// followParent does nothing where the kernel cannot signal a child when
// its parent dies: stop the stack before exiting.
func followParent(*exec.Cmd) {}
