package pglogstore_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/url"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/hookline/hookline/pkg/logstore"
	"github.com/hookline/hookline/pkg/logstore/pglogstore"
	"github.com/hookline/hookline/pkg/testinfra"
)

func partitions(t *testing.T, dbURL string) map[string]bool {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(context.Background(), `SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid`)
	if err != nil {
		t.Fatal(err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, n := range names {
		out[n] = true
	}
	return out
}

// TestRetentionDropsPartitions: retention removes whole days as tables
// (no DELETE, no dead rows), and the coming days exist before they come.
func TestRetentionDropsPartitions(t *testing.T) {
	dbURL := testinfra.Postgres(t)
	now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	s, err := pglogstore.Open(context.Background(), pglogstore.Config{URL: dbURL, Retention: 48 * time.Hour, DaysAhead: 3, Now: clock}, testinfra.Logger())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got := partitions(t, dbURL)
	for _, table := range []string{"events", "deliveries", "attempts", "bodies"} {
		for _, day := range []string{"20260309", "20260310", "20260311", "20260312", "20260313"} {
			if !got[table+"_p"+day] {
				t.Errorf("partition %s_p%s missing after Open; have %v", table, day, got)
			}
		}
	}
	d := logstore.Delivery{Tenant: "t", ID: "dlv_1", SubscriptionID: "sub", EventID: "evt", CreatedAt: now, Payload: []byte(`{}`)}
	if _, err := s.Write(context.Background(), logstore.Batch{Deliveries: []logstore.Delivery{d}}); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	now = now.Add(4 * 24 * time.Hour) // 2026-03-14 12:00: days up to the 11th are past 48 h
	mu.Unlock()
	if err := s.Maintain(context.Background()); err != nil {
		t.Fatal(err)
	}
	got = partitions(t, dbURL)
	for _, table := range []string{"events", "deliveries", "attempts", "bodies"} {
		for _, day := range []string{"20260309", "20260310", "20260311"} {
			if got[table+"_p"+day] {
				t.Errorf("partition %s_p%s kept past retention", table, day)
			}
		}
		for _, day := range []string{"20260312", "20260313", "20260314", "20260317"} {
			if !got[table+"_p"+day] {
				t.Errorf("partition %s_p%s missing after Maintain", table, day)
			}
		}
	}
	if _, err := s.GetDelivery(context.Background(), "t", "dlv_1"); !errors.Is(err, logstore.ErrNotFound) {
		t.Errorf("delivery of a dropped day: %v, want ErrNotFound", err)
	}
}

// TestOpenMigratesOnce: instances starting together on an empty database
// all start, and the schema is migrated once.
func TestOpenMigratesOnce(t *testing.T) {
	dbURL := testinfra.Postgres(t)
	var wg sync.WaitGroup
	stores := make([]*pglogstore.Store, 4)
	errs := make([]error, 4)
	for i := range stores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stores[i], errs[i] = pglogstore.Open(context.Background(), pglogstore.Config{URL: dbURL}, testinfra.Logger())
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("instance %d: %v", i, err)
		}
		defer stores[i].Close()
	}
	files, err := filepath.Glob("migrations/*.sql")
	if err != nil || len(files) == 0 {
		t.Fatalf("migrations: %v, %v", files, err)
	}
	v, err := stores[0].SchemaVersion(context.Background())
	if err != nil || v != int64(len(files)) {
		t.Errorf("schema version %d, %v; want %d", v, err, len(files))
	}
	conn, err := pgx.Connect(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var applied int
	if err := conn.QueryRow(context.Background(), "SELECT count(*) FROM logstore_migrations WHERE version_id > 0").Scan(&applied); err != nil {
		t.Fatal(err)
	}
	if applied != len(files) {
		t.Errorf("%d migrations applied, want each of the %d once", applied, len(files))
	}
}

// proxy forwards TCP to PostgreSQL until it is stopped, which cuts every
// connection: the database gone, as far as the store can tell.
type proxy struct {
	target string
	mu     sync.Mutex
	ln     net.Listener
	conns  []net.Conn
}

func (p *proxy) start(t *testing.T, addr string) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, up)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(up, c); up.Close() }()
			go func() { _, _ = io.Copy(c, up); c.Close() }()
		}
	}()
}

func (p *proxy) stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.ln.Close()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// TestUnavailable: with the database gone, reads and writes fail with
// ErrUnavailable (the API's 503, the writer's pause), never an empty
// answer; once it is back, the same store works again.
func TestUnavailable(t *testing.T) {
	dbURL := testinfra.Postgres(t)
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{target: u.Host}
	p.start(t, "127.0.0.1:0")
	addr := p.ln.Addr().String()
	defer p.stop()
	u.Host = addr
	s, err := pglogstore.Open(context.Background(), pglogstore.Config{URL: u.String(), QueryTimeout: 2 * time.Second}, testinfra.Logger())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	now := time.Now()
	e := logstore.Event{Tenant: "t", ID: "evt_1", Type: "x", ReceivedAt: now, Data: []byte(`{}`)}
	if _, err := s.Write(context.Background(), logstore.Batch{Events: []logstore.Event{e}}); err != nil {
		t.Fatal(err)
	}

	p.stop()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := s.ListEvents(ctx, "t", logstore.EventQuery{}); !errors.Is(err, logstore.ErrUnavailable) {
		t.Errorf("list with the database gone: %v, want ErrUnavailable", err)
	}
	if _, err := s.GetEvent(ctx, "t", "evt_1"); !errors.Is(err, logstore.ErrUnavailable) {
		t.Errorf("get with the database gone: %v, want ErrUnavailable", err)
	}
	e2 := e
	e2.ID = "evt_2"
	if _, err := s.Write(ctx, logstore.Batch{Events: []logstore.Event{e2}}); !errors.Is(err, logstore.ErrUnavailable) {
		t.Errorf("write with the database gone: %v, want ErrUnavailable", err)
	}

	p.start(t, addr)
	if _, err := s.Write(context.Background(), logstore.Batch{Events: []logstore.Event{e2}}); err != nil {
		t.Fatalf("write once the database is back: %v", err)
	}
	page, err := s.ListEvents(context.Background(), "t", logstore.EventQuery{})
	if err != nil || len(page.Items) != 2 {
		t.Errorf("list once the database is back: %d events, %v; want 2", len(page.Items), err)
	}
}

// TestReadOnly: a reader (the query API) opens without the database, and
// without the schema, answering ErrUnavailable until both are there,
// never an empty page; it writes nothing.
func TestReadOnly(t *testing.T) {
	ctx := context.Background()
	down, err := pglogstore.Open(ctx, pglogstore.Config{URL: "postgres://nobody@127.0.0.1:1/none?sslmode=disable&connect_timeout=2", ReadOnly: true}, testinfra.Logger())
	if err != nil {
		t.Fatalf("a reader of a database that is down does not open: %v", err)
	}
	defer down.Close()
	if _, err := down.ListEvents(ctx, "acme", logstore.EventQuery{}); !errors.Is(err, logstore.ErrUnavailable) {
		t.Errorf("list from a database that is down: %v, want ErrUnavailable", err)
	}

	dbURL := testinfra.Postgres(t)
	r, err := pglogstore.Open(ctx, pglogstore.Config{URL: dbURL, ReadOnly: true}, testinfra.Logger())
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := r.ListEvents(ctx, "acme", logstore.EventQuery{}); !errors.Is(err, logstore.ErrUnavailable) {
		t.Errorf("list before the schema exists: %v, want ErrUnavailable", err)
	}
	if _, err := r.Write(ctx, logstore.Batch{}); err == nil {
		t.Error("a read-only store wrote")
	}
	if err := r.Maintain(ctx); err == nil {
		t.Error("a read-only store maintained partitions")
	}
	w, err := pglogstore.Open(ctx, pglogstore.Config{URL: dbURL}, testinfra.Logger())
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if p, err := r.ListEvents(ctx, "acme", logstore.EventQuery{}); err != nil || len(p.Items) != 0 {
		t.Errorf("list once the schema exists: %d items, %v; want an empty page", len(p.Items), err)
	}
}
