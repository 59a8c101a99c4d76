package health_test

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/hookline/hookline/pkg/health"
	"github.com/hookline/hookline/pkg/id"
	"github.com/hookline/hookline/pkg/testinfra"
	"github.com/hookline/hookline/pkg/wire"
)

func TestThresholdsOnRealRedis(t *testing.T) {
	rdb, keys := testinfra.Redis(t), wire.NewTopics(testinfra.Prefix(t)).Keys().Health()
	tr := health.New(rdb, keys, time.Hour)
	ctx := context.Background()
	sub := id.New("sub")
	start := time.Now()
	alerts := map[int64][]string{}
	for i := int64(1); i <= 25; i++ {
		s, err := tr.Failure(ctx, sub, health.Failed{At: start.Add(time.Duration(i) * time.Second)})
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
	s, err := tr.Failure(ctx, sub, health.Failed{At: start.Add(2 * time.Hour)})
	if err != nil || !slices.Contains(s.Alerts, health.Disabled) {
		t.Fatalf("after the window: %+v %v", s, err)
	}
	if s, _ = tr.Failure(ctx, sub, health.Failed{At: start.Add(3 * time.Hour)}); slices.Contains(s.Alerts, health.Disabled) {
		t.Fatal("disabled reported twice")
	}

	// A success resets the streak; the next failure starts a new one.
	if _, err := tr.Success(ctx, sub); err != nil {
		t.Fatal(err)
	}
	if got, _ := tr.Get(ctx, sub); got.Failures != 0 {
		t.Fatalf("after success: %+v", got)
	}
	if s, _ = tr.Failure(ctx, sub, health.Failed{At: start.Add(4 * time.Hour)}); s.Failures != 1 || len(s.Alerts) != 0 {
		t.Fatalf("new streak: %+v", s)
	}
}

func TestSendersShareTheCount(t *testing.T) {
	rdb, keys := testinfra.Redis(t), wire.NewTopics(testinfra.Prefix(t)).Keys().Health()
	a, b := health.New(rdb, keys, time.Hour), health.New(rdb, keys, time.Hour)
	sub := id.New("sub")
	ctx := context.Background()
	failing := 0
	for i := range 10 {
		tr := a
		if i%2 == 1 {
			tr = b
		}
		s, err := tr.Failure(ctx, sub, health.Failed{At: time.Now()})
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
	rdb, keys := testinfra.Redis(t), wire.NewTopics(testinfra.Prefix(t)).Keys().Health()
	tr := health.New(rdb, keys, time.Hour)
	ctx := context.Background()
	failing, healthy, critical := id.New("sub"), id.New("sub"), id.New("sub")
	at := time.UnixMilli(time.Now().UnixMilli())
	for range 5 {
		if _, err := tr.Failure(ctx, failing, health.Failed{At: at}); err != nil {
			t.Fatal(err)
		}
	}
	for range 21 {
		if _, err := tr.Failure(ctx, critical, health.Failed{At: at}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := tr.Peek(ctx, failing, healthy, critical)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0].Failures != 5 || !got[0].FailingSince.Equal(at) || got[1].Failures != 0 ||
		!got[1].FailingSince.IsZero() || got[2].Failures != 21 {
		t.Fatalf("Peek = %+v, want 5 failures since %v, none, 21", got, at)
	}
	if empty, err := tr.Peek(ctx); err != nil || len(empty) != 0 {
		t.Fatalf("Peek of nothing = %v, %v", empty, err)
	}
}

// TestRecoveryReportedOnce: a success ending a streak that reached failing
// is a recovery, with the streak as it ended (its length, start and last
// failure), and however many senders end the same streak at once only one
// of them is told.
func TestRecoveryReportedOnce(t *testing.T) {
	rdb, keys := testinfra.Redis(t), wire.NewTopics(testinfra.Prefix(t)).Keys().Health()
	ctx := context.Background()
	sub := id.New("sub")
	start := time.UnixMilli(time.Now().Add(-time.Minute).UnixMilli())
	tr := health.New(rdb, keys, time.Hour)
	for i := range 7 {
		f := health.Failed{At: start.Add(time.Duration(i) * time.Second), Status: 502, Error: "502 Bad Gateway"}
		if i == 6 {
			f.Status, f.Error = 0, "timeout after 15s"
		}
		if _, err := tr.Failure(ctx, sub, f); err != nil {
			t.Fatal(err)
		}
	}

	const senders = 8
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		told []health.Recovery
	)
	for range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, err := health.New(rdb, keys, time.Hour).Success(ctx, sub)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			told = append(told, got...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	if len(told) != 1 {
		t.Fatalf("%d of %d senders were told of the recovery, want 1: %+v", len(told), senders, told)
	}
	r := told[0]
	if r.SubscriptionID != sub || r.State.Failures != 7 || !r.State.FailingSince.Equal(start) ||
		r.State.LastStatus != 0 || r.State.LastError != "timeout after 15s" || !slices.Equal(r.State.Alerts, []string{health.Recovered}) {
		t.Errorf("recovery %+v, want 7 failures since %v ending with the timeout", r, start)
	}
	if got, _ := tr.Get(ctx, sub); got.Failures != 0 {
		t.Errorf("streak after the recovery: %+v", got)
	}
	if again, err := tr.Success(ctx, sub); err != nil || len(again) != 0 {
		t.Errorf("a second success: %+v %v, want no recovery", again, err)
	}
}

// TestRecoveryOnlyAfterAnAlert: a streak nobody was told of (fewer than
// FailingAfter failures) ends silently; one that disabled the endpoint
// before reaching FailingAfter is a recovery, since its owner was told.
// Several subscriptions end in one call.
func TestRecoveryOnlyAfterAnAlert(t *testing.T) {
	rdb, keys := testinfra.Redis(t), wire.NewTopics(testinfra.Prefix(t)).Keys().Health()
	ctx := context.Background()
	tr := health.New(rdb, keys, time.Minute)
	short, disabled, failing, healthy := id.New("sub"), id.New("sub"), id.New("sub"), id.New("sub")
	start := time.Now().Add(-time.Hour)
	fail := func(sub string, at time.Time) health.State {
		t.Helper()
		s, err := tr.Failure(ctx, sub, health.Failed{At: at, Status: 500, Error: "500 Internal Server Error"})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	for range health.FailingAfter - 1 {
		fail(short, start)
	}
	fail(disabled, start)
	if s := fail(disabled, start.Add(2*time.Minute)); !slices.Contains(s.Alerts, health.Disabled) {
		t.Fatalf("two failures two windows apart: %+v, want disabled", s)
	}
	for range health.FailingAfter {
		fail(failing, start)
	}
	got, err := tr.Success(ctx, short, disabled, healthy, failing)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range got {
		ids = append(ids, r.SubscriptionID)
	}
	if !slices.Equal(ids, []string{disabled, failing}) {
		t.Errorf("recoveries of %v, want the disabled one and the failing one only", ids)
	}
	for _, sub := range []string{short, disabled, failing} {
		if s, _ := tr.Get(ctx, sub); s.Failures != 0 {
			t.Errorf("%s still has a streak: %+v", sub, s)
		}
	}
}

// TestLongErrorsAreCut: the error kept with a streak is bounded, cut on a
// character boundary.
func TestLongErrorsAreCut(t *testing.T) {
	rdb, keys := testinfra.Redis(t), wire.NewTopics(testinfra.Prefix(t)).Keys().Health()
	ctx := context.Background()
	tr := health.New(rdb, keys, time.Hour)
	sub := id.New("sub")
	long := "x" + strings.Repeat("é", 1000)
	for range health.FailingAfter {
		s, err := tr.Failure(ctx, sub, health.Failed{At: time.Now(), Status: 500, Error: long})
		if err != nil {
			t.Fatal(err)
		}
		if len(s.LastError) > 512 || !strings.HasPrefix(long, s.LastError) || !utf8.ValidString(s.LastError) {
			t.Fatalf("kept error of %d bytes (valid UTF-8: %v), want a prefix of at most 512", len(s.LastError), utf8.ValidString(s.LastError))
		}
	}
	got, err := tr.Success(ctx, sub)
	if err != nil || len(got) != 1 || len(got[0].State.LastError) > 512 || !utf8.ValidString(got[0].State.LastError) {
		t.Fatalf("recovery %+v %v", got, err)
	}
}
