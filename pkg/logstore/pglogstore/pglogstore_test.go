package pglogstore_test

import (
	"context"
	"testing"

	"github.com/hookline/hookline/pkg/logstore"
	"github.com/hookline/hookline/pkg/logstore/pglogstore"
	"github.com/hookline/hookline/pkg/logstore/storetest"
	"github.com/hookline/hookline/pkg/testinfra"
)

// open is the suite's harness: a store on a database of its own.
func open(t *testing.T, cfg storetest.Config) logstore.Store {
	t.Helper()
	s, err := pglogstore.Open(context.Background(), pglogstore.Config{
		URL: testinfra.Postgres(t), Retention: cfg.Retention, Now: cfg.Now,
	}, testinfra.Logger())
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, open)
}
