package alert

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/hookline/hookline/pkg/health"
	"github.com/hookline/hookline/pkg/record"
	"github.com/hookline/hookline/pkg/testinfra"
)

func testOutbox(t *testing.T) *Outbox {
	t.Helper()
	rdb := testinfra.Redis(t)
	prefix := testinfra.Prefix(t) + "notify:"
	t.Cleanup(func() {
		ctx := context.Background()
		keys, _ := rdb.Keys(ctx, prefix+"*").Result()
		if len(keys) > 0 {
			rdb.Del(ctx, keys...)
		}
	})
	return NewOutbox(rdb, prefix)
}

var t0 = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

func TestOutboxQueuesAnEventOnce(t *testing.T) {
	o, ctx := testOutbox(t), context.Background()
	j := alertJob(KindFailing, health.EndpointAlert{ConsecutiveFailures: 5})
	for i, want := range []bool{true, false} {
		fresh, err := o.EnqueueAlert(ctx, j, t0)
		if err != nil || fresh != want {
			t.Fatalf("enqueue %d = %v, %v; want %v", i, fresh, err, want)
		}
	}
	ids, err := o.Claim(ctx, t0, time.Minute, 10)
	if err != nil || !slices.Equal(ids, []string{j.ID}) {
		t.Fatalf("claim = %v, %v", ids, err)
	}
	// Claimed: not due again until the lease ends.
	if ids, _ := o.Claim(ctx, t0.Add(59*time.Second), time.Minute, 10); len(ids) != 0 {
		t.Fatalf("claimed again within the lease: %v", ids)
	}
	if ids, _ := o.Claim(ctx, t0.Add(61*time.Second), time.Minute, 10); len(ids) != 1 {
		t.Fatalf("not claimable after the lease: %v", ids)
	}
	got, err := o.Load(ctx, j.ID)
	if err != nil || got.Kind != KindFailing || got.Tenant != "acme" || got.SubscriptionID != "sub_1" ||
		got.Alert.Trigger != "evt_1" || got.Alert.ConsecutiveFailures != 5 || !got.QueuedAt.Equal(t0) {
		t.Fatalf("loaded %+v, %v", got, err)
	}
	if err := o.Finish(ctx, j.ID); err != nil {
		t.Fatal(err)
	}
	// Finished, its event is still remembered.
	if fresh, _ := o.EnqueueAlert(ctx, j, t0); fresh {
		t.Fatal("a finished notification's event was queued again")
	}
	if got, _ := o.Load(ctx, j.ID); got != nil {
		t.Fatalf("finished job still loads: %+v", got)
	}
}

func TestOutboxDigestWindows(t *testing.T) {
	o, ctx := testOutbox(t), context.Background()
	window := 10 * time.Minute
	item := func(n int) Item {
		return Item{Trigger: "evt_" + string(rune('a'+n)), At: t0.Add(time.Duration(n) * time.Second),
			DeliveryExhausted: health.DeliveryExhausted{DeliveryID: "dlv_" + string(rune('a'+n))}}
	}
	first := &Job{ID: "ntf_first", Kind: KindExhausted, Tenant: "acme", SubscriptionID: "sub_1"}
	for n := range 3 {
		j := *first
		j.ID = "ntf_" + string(rune('a'+n)) // only the first item's id names the digest
		fresh, err := o.EnqueueItem(ctx, &j, item(n), window, t0.Add(time.Duration(n)*time.Second))
		if err != nil || !fresh {
			t.Fatalf("item %d: %v, %v", n, fresh, err)
		}
	}
	if fresh, _ := o.EnqueueItem(ctx, first, item(1), window, t0); fresh {
		t.Fatal("an item's event was queued twice")
	}
	// Another subscription has a digest of its own.
	other := &Job{ID: "ntf_other", Kind: KindExhausted, Tenant: "acme", SubscriptionID: "sub_2"}
	if _, err := o.EnqueueItem(ctx, other, item(9), window, t0); err != nil {
		t.Fatal(err)
	}
	if ids, _ := o.Claim(ctx, t0.Add(window-time.Second), time.Minute, 10); len(ids) != 0 {
		t.Fatalf("a digest was due before its window ended: %v", ids)
	}
	ids, err := o.Claim(ctx, t0.Add(window), time.Minute, 10)
	if err != nil || !slices.Equal(slices.Sorted(slices.Values(ids)), []string{"ntf_a", "ntf_other"}) {
		t.Fatalf("claim = %v, %v", ids, err)
	}
	j, err := o.Load(ctx, "ntf_a")
	if err != nil || len(j.Items) != 3 || j.Items[0].DeliveryID != "dlv_a" || j.Items[2].DeliveryID != "dlv_c" {
		t.Fatalf("digest %+v, %v", j, err)
	}
	// Claimed digests are closed: a new item opens the next one.
	next := &Job{ID: "ntf_next", Kind: KindExhausted, Tenant: "acme", SubscriptionID: "sub_1"}
	if fresh, _ := o.EnqueueItem(ctx, next, item(5), window, t0.Add(window)); !fresh {
		t.Fatal("the next item was not queued")
	}
	if j, _ := o.Load(ctx, "ntf_a"); len(j.Items) != 3 {
		t.Fatalf("an item joined a digest being sent: %d items", len(j.Items))
	}
	if j, _ := o.Load(ctx, "ntf_next"); j == nil || len(j.Items) != 1 {
		t.Fatalf("the next digest: %+v", j)
	}
}

func TestOutboxAdmitCountsOnceAndCaps(t *testing.T) {
	o, ctx := testOutbox(t), context.Background()
	var jobs []*Job
	for i := range 3 {
		j := alertJob(KindFailing, health.EndpointAlert{})
		j.ID, j.Alert.Trigger = "ntf_"+string(rune('a'+i)), "evt_"+string(rune('a'+i))
		if _, err := o.EnqueueAlert(ctx, j, t0); err != nil {
			t.Fatal(err)
		}
		jobs = append(jobs, j)
	}
	rcpts := []string{"Owner@Example.com", "other@example.com"}
	// The cap is 2 per hour: the first two jobs reach owner, the third not.
	for i, j := range jobs[:2] {
		got, capped, err := o.Admit(ctx, j, rcpts, 2, t0)
		if err != nil || capped != 0 || len(got.Pending) != 2 || !got.Admitted {
			t.Fatalf("admit %d: %+v, %d, %v", i, got, capped, err)
		}
	}
	// Admitting again (a retried round) does not count again.
	if got, capped, _ := o.Admit(ctx, jobs[0], rcpts, 2, t0); capped != 0 || len(got.Pending) != 2 {
		t.Fatalf("a second admit changed the job: %+v", got)
	}
	got, capped, err := o.Admit(ctx, jobs[2], []string{"owner@example.com", "new@example.com"}, 2, t0)
	if err != nil || capped != 1 || !slices.Equal(got.Pending, []string{"new@example.com"}) ||
		got.Results["owner@example.com"].Outcome != record.OutcomeSuppressed {
		t.Fatalf("third admit: %+v, %d, %v", got, capped, err)
	}
	// Another hour, another count; another tenant, another count.
	later := alertJob(KindFailing, health.EndpointAlert{})
	later.ID, later.Alert.Trigger = "ntf_later", "evt_later"
	_, _ = o.EnqueueAlert(ctx, later, t0)
	if _, capped, _ := o.Admit(ctx, later, rcpts, 2, t0.Add(time.Hour)); capped != 0 {
		t.Fatal("the cap did not reset the next hour")
	}
	elsewhere := alertJob(KindFailing, health.EndpointAlert{})
	elsewhere.ID, elsewhere.Tenant, elsewhere.Alert.Trigger = "ntf_else", "globex", "evt_else"
	_, _ = o.EnqueueAlert(ctx, elsewhere, t0)
	if _, capped, _ := o.Admit(ctx, elsewhere, rcpts, 2, t0); capped != 0 {
		t.Fatal("one tenant's emails used up another tenant's cap")
	}
}

func TestOutboxSettle(t *testing.T) {
	o, ctx := testOutbox(t), context.Background()
	j := alertJob(KindCritical, health.EndpointAlert{})
	_, _ = o.EnqueueAlert(ctx, j, t0)
	j, _, _ = o.Admit(ctx, j, []string{"a@example.com", "b@example.com", "c@example.com"}, 10, t0)
	_, _ = o.Claim(ctx, t0, time.Minute, 10)
	done := map[string]Result{"a@example.com": {Outcome: record.OutcomeSent}, "b@example.com": {Outcome: record.OutcomeFailed, Error: "550 5.1.1: no such user"}}
	if kept, err := o.Settle(ctx, j, done, t0.Add(30*time.Second), "451 try later"); err != nil || !kept {
		t.Fatalf("settle: %v, %v", kept, err)
	}
	got, err := o.Load(ctx, j.ID)
	if err != nil || !slices.Equal(got.Pending, []string{"c@example.com"}) || got.Attempts != 1 || got.LastError != "451 try later" ||
		got.Results["b@example.com"] != (Result{Outcome: record.OutcomeFailed, Error: "550 5.1.1: no such user"}) ||
		got.Results["a@example.com"].Outcome != record.OutcomeSent {
		t.Fatalf("settled %+v, %v", got, err)
	}
	if ids, _ := o.Claim(ctx, t0.Add(29*time.Second), time.Minute, 10); len(ids) != 0 {
		t.Fatal("due before its retry time")
	}
	if ids, _ := o.Claim(ctx, t0.Add(30*time.Second), time.Minute, 10); len(ids) != 1 {
		t.Fatal("not due at its retry time")
	}
	// Finished by another instance meanwhile: settling says so and
	// brings nothing back.
	if err := o.Finish(ctx, j.ID); err != nil {
		t.Fatal(err)
	}
	if kept, err := o.Settle(ctx, j, map[string]Result{"c@example.com": {Outcome: record.OutcomeSent}}, t0, ""); err != nil || kept {
		t.Fatalf("settling a finished job: %v, %v", kept, err)
	}
	if n, _ := o.Len(ctx); n != 0 {
		t.Fatalf("settling a finished job queued it again: %d queued", n)
	}
}
