//go:build unix

package send_test

import (
	"syscall"
	"time"
)

// cpuTime is the CPU time (user and system) the test process has used, so
// that a benchmark can report CPU per delivery, which other load on the
// machine does not inflate the way it does wall time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
