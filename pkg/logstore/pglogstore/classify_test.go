package pglogstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/hookline/hookline/pkg/logstore"
)

func TestClassify(t *testing.T) {
	cases := []struct {
		name        string
		err         error
		unavailable bool
	}{
		{"server shutting down", &pgconn.PgError{Code: "57P01"}, true},
		{"server starting", &pgconn.PgError{Code: "57P03"}, true},
		{"connection failure", &pgconn.PgError{Code: "08006"}, true},
		{"too many connections", &pgconn.PgError{Code: "53300"}, true},
		{"query timeout", &pgconn.PgError{Code: "57014"}, true},
		{"schema not created yet", &pgconn.PgError{Code: "42P01"}, true},
		{"connection cut", fmt.Errorf("read: %w", io.ErrUnexpectedEOF), true},
		{"deadline", context.DeadlineExceeded, true},
		{"unique violation", &pgconn.PgError{Code: "23505"}, false},
		{"syntax error", &pgconn.PgError{Code: "42601"}, false},
		{"a scan bug", errors.New("can't scan into dest[3]"), false},
		{"caller gave up", context.Canceled, false},
		{"not found", logstore.ErrNotFound, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := classify(tc.err)
			if errors.Is(got, logstore.ErrUnavailable) != tc.unavailable {
				t.Errorf("classify(%v) = %v; unavailable should be %v", tc.err, got, tc.unavailable)
			}
			if !errors.Is(got, tc.err) {
				t.Errorf("classify(%v) lost the original error", tc.err)
			}
		})
	}
}
