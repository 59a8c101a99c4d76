package health_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/hookline/hookline/pkg/health"
	"github.com/hookline/hookline/pkg/id"
	"github.com/hookline/hookline/pkg/testinfra"
)

func TestThresholdsOnRealRedis(t *testing.T) {
	rdb := testinfra.Redis(t)
	tr := health.New(rdb, time.Hour)
	ctx := context.Background()
	sub := id.New("sub")
	start := time.Now()
	alerts := map[int64][]string{}
	for i := int64(1); i <= 25; i++ {
		s, err := tr.Failure(ctx, sub, start.Add(time.Duration(i)*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if s.Failures != i {
			t.Fatalf("failure %d counted as %d", i, s.Failures)
		}
		if !s.FailingSince.Equal(time.UnixMilli(start.Add(time.Second).UnixMilli())) {
			t.Fatalf("failing since %v, want the first failure", s.FailingSince)
		}
		if len(s.Alerts) > 0 {
			alerts[i] = s.Alerts
		}
	}
	if len(alerts) != 2 || !slices.Equal(alerts[5], []string{health.Failing}) || !slices.Equal(alerts[20], []string{health.Critical}) {
		t.Fatalf("alerts %v, want failing at 5 and critical at 20 only", alerts)
	}

	// Past the window: disabled, once.
	s, err := tr.Failure(ctx, sub, start.Add(2*time.Hour))
	if err != nil || !slices.Contains(s.Alerts, health.Disabled) {
		t.Fatalf("after the window: %+v %v", s, err)
	}
	if s, _ = tr.Failure(ctx, sub, start.Add(3*time.Hour)); slices.Contains(s.Alerts, health.Disabled) {
		t.Fatal("disabled reported twice")
	}

	// A success resets the streak; the next failure starts a new one.
	if err := tr.Success(ctx, sub); err != nil {
		t.Fatal(err)
	}
	if got, _ := tr.Get(ctx, sub); got.Failures != 0 {
		t.Fatalf("after success: %+v", got)
	}
	if s, _ = tr.Failure(ctx, sub, start.Add(4*time.Hour)); s.Failures != 1 || len(s.Alerts) != 0 {
		t.Fatalf("new streak: %+v", s)
	}
}

func TestSendersShareTheCount(t *testing.T) {
	rdb := testinfra.Redis(t)
	a, b := health.New(rdb, time.Hour), health.New(rdb, time.Hour)
	sub := id.New("sub")
	ctx := context.Background()
	failing := 0
	for i := range 10 {
		tr := a
		if i%2 == 1 {
			tr = b
		}
		s, err := tr.Failure(ctx, sub, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if slices.Contains(s.Alerts, health.Failing) {
			failing++
		}
	}
	if got, _ := a.Get(ctx, sub); got.Failures != 10 || failing != 1 {
		t.Fatalf("count %d, failing alerts %d: want 10 and 1", got.Failures, failing)
	}
}

// TestPeekReadsManyInOrder: Peek sees the streaks Failure wrote, in the
// order asked, and a subscription without one as healthy.
func TestPeekReadsManyInOrder(t *testing.T) {
	rdb := testinfra.Redis(t)
	tr := health.New(rdb, time.Hour)
	ctx := context.Background()
	failing, healthy, critical := id.New("sub"), id.New("sub"), id.New("sub")
	at := time.UnixMilli(time.Now().UnixMilli())
	for range 5 {
		if _, err := tr.Failure(ctx, failing, at); err != nil {
			t.Fatal(err)
		}
	}
	for range 21 {
		if _, err := tr.Failure(ctx, critical, at); err != nil {
			t.Fatal(err)
		}
	}
	got, err := health.Peek(ctx, rdb, failing, healthy, critical)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0].Failures != 5 || !got[0].FailingSince.Equal(at) || got[1].Failures != 0 ||
		!got[1].FailingSince.IsZero() || got[2].Failures != 21 {
		t.Fatalf("Peek = %+v, want 5 failures since %v, none, 21", got, at)
	}
	if empty, err := health.Peek(ctx, rdb); err != nil || len(empty) != 0 {
		t.Fatalf("Peek of nothing = %v, %v", empty, err)
	}
}
