//go:build !unix

package testinfra

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// Querier is what PostgresCPU asks its server's pid with.
type Querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// PostgresCPU is zero where /proc is not.
func PostgresCPU(context.Context, Querier) time.Duration { return 0 }
