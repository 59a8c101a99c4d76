//go:build !unix

package send_test

import "time"

// cpuTime is not measured here; benchmarks report 0 CPU per delivery.
func cpuTime() time.Duration { return 0 }
