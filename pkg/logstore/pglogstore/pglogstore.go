// Package pglogstore is the PostgreSQL driver of logstore (pgx v5).
//
// Four tables (events, deliveries, attempts, bodies), each partitioned by
// day on its time column; retention drops whole partitions, never DELETEs.
// Writes are one transaction of multi-row INSERT ... SELECT FROM unnest(...)
// statements, ON CONFLICT DO NOTHING for immutable rows, and an upsert that
// keeps the greater state (logstore.Ahead) for deliveries. Lists are
// keyset queries that read O(limit) index entries. The schema is migrated
// at Open by goose from the embedded migrations/. The design, the query
// plans and the measured figures are in docs/delivery-history.md.
package pglogstore

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
	"github.com/rs/zerolog"

	"github.com/hookline/hookline/pkg/logstore"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Config configures a Store.
type Config struct {
	// URL is the database, e.g. postgres://user:pass@host:5432/hookline.
	URL string
	// Retention is how long history is kept (logstore.DefaultRetention
	// when zero). Data goes by whole days: a day's partition is dropped
	// once its end is older than Retention.
	Retention time.Duration
	// DaysAhead is how many days of partitions Maintain creates after
	// today (2 when zero), so that midnight never waits for DDL.
	DaysAhead int
	// MaxConns bounds the pool (8 when zero).
	MaxConns int32
	// QueryTimeout bounds each read (5 s when zero), so that no query,
	// whoever asks it, holds a connection for long.
	QueryTimeout time.Duration
	// Now is the clock (time.Now when nil); tests move it.
	Now func() time.Time
	// ReadOnly opens the store for reading only (the query API): Open
	// neither migrates nor prepares partitions, nor even connects (the
	// first query does), so a reader starts while the database is down
	// and its queries fail with logstore.ErrUnavailable meanwhile, as
	// they do before the logs service has created the schema. Write and
	// Maintain refuse.
	ReadOnly bool
}

// Store is the PostgreSQL logstore.Store.
type Store struct {
	pool         *pgxpool.Pool
	log          zerolog.Logger
	retention    time.Duration
	daysAhead    int
	queryTimeout time.Duration
	now          func() time.Time
	readOnly     bool

	mu    sync.Mutex
	known map[string]bool // partitions known to exist, by name
}

var _ logstore.Store = (*Store)(nil)

// Open connects, migrates the schema to the latest version and prepares
// the partitions of the coming days.
func Open(ctx context.Context, cfg Config, log zerolog.Logger) (*Store, error) {
	pcfg, err := pgxpool.ParseConfig(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("postgres url: %w", err)
	}
	pcfg.MaxConns = cfg.MaxConns
	if pcfg.MaxConns == 0 {
		pcfg.MaxConns = 8
	}
	s := &Store{
		log: log, retention: cfg.Retention, daysAhead: cfg.DaysAhead,
		queryTimeout: cfg.QueryTimeout, now: cfg.Now, known: map[string]bool{}, readOnly: cfg.ReadOnly,
	}
	if s.retention <= 0 {
		s.retention = logstore.DefaultRetention
	}
	if s.daysAhead <= 0 {
		s.daysAhead = 2
	}
	if s.queryTimeout <= 0 {
		s.queryTimeout = 5 * time.Second
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.pool, err = pgxpool.NewWithConfig(ctx, pcfg); err != nil {
		return nil, classify(fmt.Errorf("connect: %w", err))
	}
	if s.readOnly {
		return s, nil
	}
	if err := s.migrate(ctx); err != nil {
		s.pool.Close()
		return nil, err
	}
	if err := s.Maintain(ctx); err != nil {
		s.pool.Close()
		return nil, err
	}
	return s, nil
}

// errReadOnly is what a read-only store's Write and Maintain return.
var errReadOnly = errors.New("pglogstore: the store is open read-only")

// Close closes the pool.
func (s *Store) Close() { s.pool.Close() }

// migrationTable keeps goose's version table apart from anything else the
// database holds.
const migrationTable = "logstore_migrations"

// migrate applies the embedded migrations not applied yet. goose holds a
// PostgreSQL advisory lock meanwhile, so instances starting together
// migrate once.
func (s *Store) migrate(ctx context.Context) error {
	fsys, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return err
	}
	locker, err := lock.NewPostgresSessionLocker()
	if err != nil {
		return err
	}
	db := stdlib.OpenDBFromPool(s.pool)
	defer db.Close()
	p, err := goose.NewProvider(goose.DialectPostgres, db, fsys,
		goose.WithSessionLocker(locker), goose.WithTableName(migrationTable), goose.WithDisableGlobalRegistry(true))
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	results, err := p.Up(ctx)
	if err != nil {
		return classify(fmt.Errorf("migrate: %w", err))
	}
	for _, r := range results {
		s.log.Info().Str("migration", r.Source.Path).Dur("took", r.Duration).Msg("logstore schema migrated")
	}
	return nil
}

// SchemaVersion is the latest migration applied.
func (s *Store) SchemaVersion(ctx context.Context) (int64, error) {
	var v int64
	err := s.pool.QueryRow(ctx, "SELECT max(version_id) FROM "+migrationTable+" WHERE is_applied").Scan(&v)
	return v, classify(err)
}

// classify wraps the errors a caller retries later in ErrUnavailable: the
// server unreachable, restarting or out of connections. A caller's own
// cancellation stays what it is.
func classify(err error) error {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, logstore.ErrNotFound) || errors.Is(err, logstore.ErrInvalid) {
		return err
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w: %w", logstore.ErrUnavailable, err)
	}
	if code, ok := sqlState(err); ok {
		switch {
		case code[:2] == "08", // connection exception
			code == "57P01", code == "57P02", code == "57P03", // shutting down, crashed, starting
			code == "53300", // too many connections
			code == "57014", // statement timeout (our QueryTimeout)
			code == "42P01": // no such table: the logs service has not created the schema yet
			return fmt.Errorf("%w: %w", logstore.ErrUnavailable, err)
		}
		return err
	}
	if connectionLost(err) {
		return fmt.Errorf("%w: %w", logstore.ErrUnavailable, err)
	}
	return err // a bug of ours, not an outage: not to be retried blindly
}

// connectionLost reports whether err says the connection to the server
// failed or was cut, rather than anything about the query.
func connectionLost(err error) bool {
	var connectErr *pgconn.ConnectError
	var netErr net.Error
	switch {
	case errors.As(err, &connectErr), errors.As(err, &netErr),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		pgconn.SafeToRetry(err), pgconn.Timeout(err):
		return true
	}
	msg := err.Error()
	return strings.Contains(msg, "conn closed") || strings.Contains(msg, "connection reset") || strings.Contains(msg, "broken pipe")
}
