//go:build !unix

package testinfra

import "time"

// CPUTime is not measured here: benchmarks report 0 CPU per operation.
func CPUTime() time.Duration { return 0 }
