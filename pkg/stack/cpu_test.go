package stack

import (
	"os"
	"testing"
	"time"
)

func TestParseStat(t *testing.T) {
	tests := []struct {
		name string
		line string
		want time.Duration
		bad  bool
	}{
		// utime 150 and stime 25 ticks: 1.75 s.
		{"plain", "4242 (sender) S 1 4242 4242 0 -1 4194560 100 0 0 0 150 25 0 0 20 0 9 0 100 0 0", 1750 * time.Millisecond, false},
		{"name with spaces and parentheses", "7 (a b) (c)) R 1 7 7 0 -1 0 0 0 0 0 3 4 0 0 20 0 1 0 1 0 0", 70 * time.Millisecond, false},
		{"truncated", "7 (x) R 1 2 3", 0, true},
		{"no name", "garbage", 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseStat(tc.line)
			if (err != nil) != tc.bad || got != tc.want {
				t.Errorf("parseStat = %v, %v; want %v, error %v", got, err, tc.want, tc.bad)
			}
		})
	}
}

func TestProcessCPUGrowsWithWork(t *testing.T) {
	before, err := ProcessCPU(os.Getpid())
	if err != nil {
		t.Skipf("no /proc here: %v", err)
	}
	// Spin until the reading moves (a tick is 10 ms of CPU); on a busy
	// machine that takes longer, so only a reading stuck for 5 s fails.
	after := before
	for end := time.Now().Add(5 * time.Second); after <= before && time.Now().Before(end); {
		for range 1_000_000 {
		}
		after, _ = ProcessCPU(os.Getpid())
	}
	if after <= before {
		t.Errorf("CPU stuck at %v after 5 s of spinning", before)
	}
}
