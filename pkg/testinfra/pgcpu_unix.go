//go:build unix

package testinfra

import (
	"context"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// clockTick is the unit of /proc/<pid>/stat times (USER_HZ, 100 on Linux).
const clockTick = 10 * time.Millisecond

// Querier is what PostgresCPU asks its server's pid with: a pgx
// connection or pool.
type Querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// PostgresCPU is the CPU time the PostgreSQL server behind q has used so
// far: its postmaster, every live child (backends, WAL writer,
// checkpointer...) and the children it has reaped. Benchmarks report CPU
// per operation next to wall time, because other load on the machine
// inflates the one and not the other. Zero when the server is not on this
// machine (its /proc is not readable).
func PostgresCPU(ctx context.Context, q Querier) time.Duration {
	var backend int
	if err := q.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&backend); err != nil {
		return 0
	}
	postmaster, ok := procStat(backend)
	if !ok {
		return 0
	}
	ppid := postmaster[1]
	self, ok := procStat(ppid)
	if !ok {
		return 0
	}
	total := self[11] + self[12] + self[13] + self[14] // utime stime cutime cstime
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st, ok := procStat(pid); ok && st[1] == ppid {
			total += st[11] + st[12]
		}
	}
	return time.Duration(total) * clockTick
}

// procStat is /proc/<pid>/stat's numeric fields after the command name:
// [0] state (0), [1] ppid, ... [11] utime, [12] stime, [13] cutime, [14] cstime.
func procStat(pid int) ([]int, bool) {
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return nil, false
	}
	s := string(raw)
	s = s[strings.LastIndexByte(s, ')')+2:]
	fields := strings.Fields(s)
	out := make([]int, len(fields))
	for i, f := range fields {
		out[i], _ = strconv.Atoi(f)
	}
	return out, len(out) > 15
}
