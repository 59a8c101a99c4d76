//go:build unix

package testinfra

import (
	"syscall"
	"time"
)

// CPUTime is the CPU time (user and system) the test process has used, so
// that a benchmark can report CPU per operation, which other load on the
// machine does not inflate the way it does wall time.
func CPUTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
