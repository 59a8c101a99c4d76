package claim_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"testing"
	"time"

	"github.com/hookline/hookline/pkg/claim"
	"github.com/hookline/hookline/pkg/deliver"
	"github.com/hookline/hookline/pkg/testinfra"
)

func store(t *testing.T) (*claim.Store, string) {
	t.Helper()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	prefix := "hookline-test:" + hex.EncodeToString(b) + ":claim:"
	return claim.New(testinfra.Redis(t), prefix), prefix
}

func look(t *testing.T, s *claim.Store, id string) claim.Claim {
	t.Helper()
	c, err := s.Look(context.Background(), []string{id})
	if err != nil {
		t.Fatal(err)
	}
	return c[0]
}

// TestClaimLifecycle: a claim is taken once, pending until resolved in
// place, and reads back as it was resolved; a failure carries what the
// attempt got.
func TestClaimLifecycle(t *testing.T) {
	ctx := context.Background()
	s, _ := store(t)
	taken, err := s.Take(ctx, []string{"a", "b", "c"}, time.Minute)
	if err != nil || !taken[0] || !taken[1] || !taken[2] {
		t.Fatalf("take: %v %v", taken, err)
	}
	if again, err := s.Take(ctx, []string{"a", "d"}, time.Minute); err != nil || again[0] || !again[1] {
		t.Fatalf("take again: %v %v, want a refused and d taken", again, err)
	}
	if c := look(t, s, "a"); c.State != claim.Pending {
		t.Errorf("a: %+v, want pending", c)
	}
	if err := s.Deliver(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	started := time.Now().UTC().Truncate(time.Millisecond)
	res := deliver.Result{URL: "https://x.example/", Class: deliver.Retryable, Status: 429, Err: "HTTP 429", RetryAfter: 30 * time.Second, Duration: 120 * time.Millisecond}
	if err := s.Fail(ctx, "b", claim.FailureOf(res, started)); err != nil {
		t.Fatal(err)
	}
	if err := s.Release(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	got, err := s.Look(ctx, []string{"a", "b", "c", "never"})
	if err != nil {
		t.Fatal(err)
	}
	if got[0].State != claim.Delivered || got[1].State != claim.Failed || got[2].State != claim.None || got[3].State != claim.None {
		t.Fatalf("states %+v, want delivered, failed, none, none", got)
	}
	f := got[1].Failure
	r := f.Result()
	if r.URL != res.URL || r.Class != res.Class || r.Status != res.Status || r.Err != res.Err || r.RetryAfter != res.RetryAfter || r.Duration != res.Duration || !f.Started.Equal(started) {
		t.Errorf("failure %+v, want what the attempt got, started %v", f, started)
	}
}

// TestPendingClaimExpires: a claim whose attempt never ended (ingest died)
// is gone after its TTL, and the pipeline sends the delivery.
func TestPendingClaimExpires(t *testing.T) {
	s, _ := store(t)
	if _, err := s.Take(context.Background(), []string{"a"}, 300*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for look(t, s, "a").State != claim.None {
		if time.Now().After(deadline) {
			t.Fatal("the pending claim did not expire")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestUnreadableClaimIsNone: a value Look cannot read counts as no claim
// (the delivery is sent: at least once).
func TestUnreadableClaimIsNone(t *testing.T) {
	s, prefix := store(t)
	rdb := testinfra.Redis(t)
	for _, v := range []string{"fnot json", "x"} {
		if err := rdb.Set(context.Background(), prefix+"a", v, time.Minute).Err(); err != nil {
			t.Fatal(err)
		}
		if c := look(t, s, "a"); c.State != claim.None {
			t.Errorf("value %q: %+v, want none", v, c)
		}
	}
}
