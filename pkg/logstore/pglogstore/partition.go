package pglogstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// A partitioned table and the column its days are cut on.
type table struct {
	name string
	date bool   // the key is a date (bodies), not a timestamptz
	with string // storage parameters of each partition
}

// The partitioned tables. deliveries leaves half of each page free: nearly
// every delivery row is updated once after its insert (its first attempt
// arrives in a later batch), and the new version must fit on the same
// page for the update to be HOT (no index entry written). At fillfactor 80
// only 28% of those updates were HOT, and each of the others wrote four
// index entries; at 50, all were, for 10 µs less server CPU per attempt
// (BenchmarkWrite, docs/delivery-history.md).
var tables = []table{
	{name: "bodies", date: true},
	{name: "events"},
	{name: "deliveries", with: "fillfactor = 50"},
	{name: "attempts"},
}

const day = 24 * time.Hour

// dayOf is the UTC day holding t.
func dayOf(t time.Time) time.Time { return t.UTC().Truncate(day) }

func partitionName(table string, d time.Time) string {
	return table + "_p" + d.Format("20060102")
}

// partitionsLock is the advisory lock (per database) that serializes
// partition DDL between the store's instances: two CREATEs of one day
// would otherwise collide on its bounds.
const partitionsLock = 0x686f6f6b6c696e65 // "hookline"

// ddlLockTimeout bounds how long partition DDL waits for the parent
// table's lock. While it waits, it queues every reader and writer of the
// table behind it, so it gives up soon and is retried later instead.
const ddlLockTimeout = "2s"

// Maintain creates the partitions of yesterday, today and DaysAhead days
// after it, and drops every partition whose day ended more than Retention
// ago. A drop that cannot get its lock at once is left to the next call,
// and reported.
func (s *Store) Maintain(ctx context.Context) error {
	if s.readOnly {
		return errReadOnly
	}
	now := s.now()
	today := dayOf(now)
	var days []time.Time
	for d := -1; d <= s.daysAhead; d++ {
		days = append(days, today.Add(time.Duration(d)*day))
	}
	return s.withPartitionLock(ctx, func(conn *pgxpool.Conn) error {
		existing, err := listPartitions(ctx, conn)
		if err != nil {
			return err
		}
		s.mu.Lock()
		for _, p := range existing {
			s.known[p.name] = true
		}
		s.mu.Unlock()
		var errs []error
		for _, t := range tables {
			for _, d := range days {
				if err := s.create(ctx, conn, t, d); err != nil {
					errs = append(errs, err)
				}
			}
		}
		horizon := now.Add(-s.retention)
		for _, p := range existing {
			if p.day.Add(day).After(horizon) {
				continue
			}
			if _, err := conn.Exec(ctx, "DROP TABLE IF EXISTS "+p.name); err != nil {
				errs = append(errs, classify(fmt.Errorf("drop expired partition %s: %w", p.name, err)))
				continue
			}
			s.log.Info().Str("partition", p.name).Msg("expired partition dropped")
			s.mu.Lock()
			delete(s.known, p.name)
			s.mu.Unlock()
		}
		return errors.Join(errs...)
	})
}

// ensure creates the partitions of these days that this instance has not
// seen yet: writes of old or future rows (a rebuild from Kafka, a clock
// ahead) never fail for want of one. needs maps table names to days.
func (s *Store) ensure(ctx context.Context, needs map[string][]time.Time) error {
	var missing []string
	s.mu.Lock()
	for t, days := range needs {
		for _, d := range days {
			if !s.known[partitionName(t, d)] {
				missing = append(missing, t)
				break
			}
		}
	}
	s.mu.Unlock()
	if len(missing) == 0 {
		return nil
	}
	return s.withPartitionLock(ctx, func(conn *pgxpool.Conn) error {
		for _, t := range tables {
			for _, d := range needs[t.name] {
				if err := s.create(ctx, conn, t, d); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// forget drops what this instance believes about existing partitions,
// after a write found one missing (another instance dropped it).
func (s *Store) forget() {
	s.mu.Lock()
	clear(s.known)
	s.mu.Unlock()
}

func (s *Store) create(ctx context.Context, conn *pgxpool.Conn, t table, d time.Time) error {
	name := partitionName(t.name, d)
	s.mu.Lock()
	known := s.known[name]
	s.mu.Unlock()
	if known {
		return nil
	}
	from, to := d.Format(time.RFC3339), d.Add(day).Format(time.RFC3339)
	if t.date {
		from, to = d.Format(time.DateOnly), d.Add(day).Format(time.DateOnly)
	}
	sql := fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s PARTITION OF %s FOR VALUES FROM ('%s') TO ('%s')", name, t.name, from, to)
	if t.with != "" {
		sql += " WITH (" + t.with + ")"
	}
	if _, err := conn.Exec(ctx, sql); err != nil {
		return classify(fmt.Errorf("create partition %s: %w", name, err))
	}
	s.mu.Lock()
	s.known[name] = true
	s.mu.Unlock()
	return nil
}

// withPartitionLock runs fn on one connection holding partitionsLock,
// with a short lock_timeout for its DDL.
func (s *Store) withPartitionLock(ctx context.Context, fn func(*pgxpool.Conn) error) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return classify(fmt.Errorf("partitions: %w", err))
	}
	// The session settings below must not leak into the pool.
	defer func() {
		_, _ = conn.Exec(context.Background(), "RESET lock_timeout")
		conn.Release()
	}()
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", int64(partitionsLock)); err != nil {
		return classify(fmt.Errorf("partitions lock: %w", err))
	}
	defer func() { _, _ = conn.Exec(context.Background(), "SELECT pg_advisory_unlock($1)", int64(partitionsLock)) }()
	if _, err := conn.Exec(ctx, "SET lock_timeout = '"+ddlLockTimeout+"'"); err != nil {
		return classify(err)
	}
	return fn(conn)
}

type partition struct {
	name string
	day  time.Time
}

// listPartitions lists the partitions of every table, oldest first.
func listPartitions(ctx context.Context, conn *pgxpool.Conn) ([]partition, error) {
	names := make([]string, len(tables))
	for i, t := range tables {
		names[i] = t.name
	}
	rows, err := conn.Query(ctx, `
		SELECT c.relname FROM pg_inherits i
		JOIN pg_class c ON c.oid = i.inhrelid
		JOIN pg_class p ON p.oid = i.inhparent
		WHERE p.oid = ANY (SELECT to_regclass(n) FROM unnest($1::text[]) n)`, names)
	if err != nil {
		return nil, classify(fmt.Errorf("list partitions: %w", err))
	}
	defer rows.Close()
	var out []partition
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return nil, err
		}
		i := strings.LastIndex(name, "_p")
		if i < 0 {
			continue // not one of ours
		}
		d, err := time.Parse("20060102", name[i+2:])
		if err != nil {
			continue
		}
		out = append(out, partition{name: name, day: d})
	}
	if err := rows.Err(); err != nil {
		return nil, classify(err)
	}
	slices.SortFunc(out, func(a, b partition) int { return a.day.Compare(b.day) })
	return out, nil
}
