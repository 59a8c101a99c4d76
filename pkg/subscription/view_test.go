package subscription_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/pkg/kafka"
	"github.com/hookline/hookline/pkg/record"
	"github.com/hookline/hookline/pkg/subscription"
	"github.com/hookline/hookline/pkg/testinfra"
)

type fixture struct {
	t      *testing.T
	cfg    kafka.Config
	codecs *record.Codecs
	prod   *kgo.Client
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	cfg := testinfra.Kafka(t)
	codecs, err := record.LoadCodecs()
	if err != nil {
		t.Fatal(err)
	}
	prod, err := kafka.NewClient(cfg, testinfra.Logger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(prod.Close)
	return &fixture{t: t, cfg: cfg, codecs: codecs, prod: prod}
}

func sub(id, name string) *record.Subscription {
	at := time.UnixMilli(1700000000000).UTC()
	return &record.Subscription{ID: id, Tenant: "acme", Name: name, URL: "https://example.com/" + id,
		EventTypes: []string{"order.*"}, Payload: "full", Enabled: true, CreatedAt: at, UpdatedAt: at}
}

// put writes s (a tombstone for id when s is nil, raw when value is set)
// and returns where it landed.
func (f *fixture) put(id string, s *record.Subscription, raw []byte) *kgo.Record {
	f.t.Helper()
	if s != nil {
		v, err := f.codecs.Subscription.Marshal(s)
		if err != nil {
			f.t.Fatal(err)
		}
		raw = v
	}
	return f.produce(f.cfg.Topics.Subscriptions, id, raw)
}

// produce writes value under id to topic and returns where it landed.
func (f *fixture) produce(topic, id string, value []byte) *kgo.Record {
	f.t.Helper()
	r := &kgo.Record{Topic: topic, Key: []byte(id), Value: value}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := f.prod.ProduceSync(ctx, r).FirstErr(); err != nil {
		f.t.Fatal(err)
	}
	return r
}

// start runs a view over the fixture's topic until the test ends.
func (f *fixture) start(v *subscription.View) {
	f.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- v.Run(ctx, f.cfg) }()
	f.t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			f.t.Errorf("Run: %v", err)
		}
	})
}

func waitReady(t *testing.T, v *subscription.View) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := v.WaitReady(ctx); err != nil {
		t.Fatalf("view not ready: %v", err)
	}
}

func TestViewCatchesUpBeforeReady(t *testing.T) {
	f := newFixture(t)
	want := map[string]string{} // id -> name after every write
	writes := 0
	for i := range 60 {
		id := fmt.Sprintf("sub_%02d", i%25)
		switch {
		case i%7 == 6:
			f.put(id, nil, nil)
			delete(want, id)
		default:
			name := fmt.Sprintf("v%d", i)
			f.put(id, sub(id, name), nil)
			want[id] = name
		}
		writes++
	}

	v := subscription.NewView(f.cfg.Topics, f.codecs, testinfra.Logger())
	if err := v.Ready(); !errors.Is(err, subscription.ErrNotReady) {
		t.Fatalf("Ready before Run = %v, want ErrNotReady", err)
	}
	var (
		mu      sync.Mutex
		changes int
		early   []int
	)
	v.OnChange(func(prev, next *record.Subscription) {
		mu.Lock()
		defer mu.Unlock()
		changes++
		if v.Ready() == nil {
			early = append(early, changes)
		}
	})
	f.start(v)
	waitReady(t, v)

	mu.Lock()
	if len(early) > 0 {
		t.Errorf("view was ready while applying pre-existing changes %v", early)
	}
	if changes == 0 || changes > writes {
		t.Errorf("%d changes seen for %d writes", changes, writes)
	}
	mu.Unlock()
	if v.Len() != len(want) {
		t.Errorf("Len = %d right when ready, want %d", v.Len(), len(want))
	}
	for i := range 25 {
		id := fmt.Sprintf("sub_%02d", i)
		got, ok := v.Get(id)
		name, exists := want[id]
		switch {
		case exists && !ok:
			t.Errorf("%s missing, want name %s", id, name)
		case !exists && ok:
			t.Errorf("%s present (name %s), want deleted", id, got.Name)
		case exists && got.Name != name:
			t.Errorf("%s name %s, want the latest %s", id, got.Name, name)
		}
	}
}

func TestViewReadyOnEmptyTopic(t *testing.T) {
	f := newFixture(t)
	v := subscription.NewView(f.cfg.Topics, f.codecs, testinfra.Logger())
	f.start(v)
	waitReady(t, v)
	if v.Len() != 0 {
		t.Errorf("Len = %d, want 0", v.Len())
	}
}

// TestViewReadyAfterTransaction writes the last subscription record in a
// transaction: the commit marker, not a record, ends the partition.
func TestViewReadyAfterTransaction(t *testing.T) {
	f := newFixture(t)
	txn, err := kafka.NewClient(f.cfg, testinfra.Logger(), kgo.TransactionalID(f.cfg.Topics.Prefix+"view"))
	if err != nil {
		t.Fatal(err)
	}
	defer txn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	value, _ := f.codecs.Subscription.Marshal(sub("sub_txn", "in a transaction"))
	if err := txn.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := txn.ProduceSync(ctx, &kgo.Record{Topic: f.cfg.Topics.Subscriptions, Key: []byte("sub_txn"), Value: value}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if err := txn.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}

	v := subscription.NewView(f.cfg.Topics, f.codecs, testinfra.Logger())
	f.start(v)
	waitReady(t, v)
	if _, ok := v.Get("sub_txn"); !ok {
		t.Error("the transactional subscription is missing")
	}
}

type change struct{ prev, next string } // names; "" for nil

func TestViewOnChange(t *testing.T) {
	f := newFixture(t)
	v := subscription.NewView(f.cfg.Topics, f.codecs, testinfra.Logger())
	changes := make(chan change, 16)
	v.OnChange(func(prev, next *record.Subscription) {
		var c change
		if prev != nil {
			c.prev = prev.Name
		}
		if next != nil {
			c.next = next.Name
		}
		changes <- c
	})
	f.start(v)
	waitReady(t, v)

	tests := []struct {
		name  string
		write *record.Subscription // nil writes a tombstone
		want  *change              // nil: no change reported
	}{
		{"create", sub("s1", "first"), &change{"", "first"}},
		{"update", sub("s1", "second"), &change{"first", "second"}},
		{"delete", nil, &change{"second", ""}},
		{"delete again", nil, nil},
		{"recreate", sub("s1", "third"), &change{"", "third"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := f.put("s1", tc.write, nil)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := v.WaitFor(ctx, r.Partition, r.Offset); err != nil {
				t.Fatalf("WaitFor: %v", err)
			}
			select {
			case got := <-changes:
				if tc.want == nil {
					t.Fatalf("change %+v reported, want none", got)
				}
				if got != *tc.want {
					t.Errorf("change %+v, want %+v", got, *tc.want)
				}
			default:
				if tc.want != nil {
					t.Errorf("no change reported, want %+v", *tc.want)
				}
			}
		})
	}
}

// TestViewWaitForReadsOwnWrite reads each write right after WaitFor.
func TestViewWaitForReadsOwnWrite(t *testing.T) {
	f := newFixture(t)
	v := subscription.NewView(f.cfg.Topics, f.codecs, testinfra.Logger())
	f.start(v)
	waitReady(t, v)
	for i := range 20 {
		id := fmt.Sprintf("sub_%d", i%4)
		name := fmt.Sprintf("write %d", i)
		r := f.put(id, sub(id, name), nil)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := v.WaitFor(ctx, r.Partition, r.Offset)
		cancel()
		if err != nil {
			t.Fatalf("WaitFor(%d, %d): %v", r.Partition, r.Offset, err)
		}
		if got, ok := v.Get(id); !ok || got.Name != name {
			t.Fatalf("after WaitFor, %s = %+v, want name %q", id, got, name)
		}
	}
	// WaitFor an offset not yet written ends with its context.
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := v.WaitFor(ctx, 0, 1<<40); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("WaitFor a future offset = %v, want DeadlineExceeded", err)
	}
}

// TestViewSyncReadsOthersWrites: a reader that learns of a subscription
// from elsewhere (notify, from an endpoint event) finds it after Sync,
// whoever wrote it and in whichever partition; before Run, and after it,
// Sync says the view is not running.
func TestViewSyncReadsOthersWrites(t *testing.T) {
	f := newFixture(t)
	v := subscription.NewView(f.cfg.Topics, f.codecs, testinfra.Logger())
	if err := v.Sync(context.Background()); !errors.Is(err, subscription.ErrNotReady) {
		t.Fatalf("Sync before Run = %v, want ErrNotReady", err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- v.Run(ctx, f.cfg) }()
	waitReady(t, v)
	for i := range 12 {
		id := fmt.Sprintf("sub_sync_%d", i)
		f.put(id, sub(id, "written elsewhere"), nil)
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := v.Sync(sctx)
		cancel()
		if err != nil {
			t.Fatalf("Sync: %v", err)
		}
		if _, ok := v.Get(id); !ok {
			t.Fatalf("after Sync, %s is not in the view", id)
		}
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := v.Sync(context.Background()); !errors.Is(err, subscription.ErrNotReady) {
		t.Errorf("Sync after Run = %v, want ErrNotReady", err)
	}
}

// TestViewSkipsUndecodable keeps a subscription whose newer record cannot
// be decoded, and goes on reading after it.
func TestViewSkipsUndecodable(t *testing.T) {
	f := newFixture(t)
	f.put("s1", sub("s1", "good"), nil)
	f.put("s1", nil, []byte("not avro"))
	f.put("s2", sub("s2", "after"), nil)
	v := subscription.NewView(f.cfg.Topics, f.codecs, testinfra.Logger())
	var (
		mu      sync.Mutex
		changes []change
	)
	v.OnChange(func(prev, next *record.Subscription) {
		mu.Lock()
		defer mu.Unlock()
		c := change{}
		if prev != nil {
			c.prev = prev.Name
		}
		if next != nil {
			c.next = next.Name
		}
		changes = append(changes, c)
	})
	f.start(v)
	waitReady(t, v)
	if got, ok := v.Get("s1"); !ok || got.Name != "good" {
		t.Errorf("s1 = %+v, %v; want the last good version kept", got, ok)
	}
	if _, ok := v.Get("s2"); !ok {
		t.Error("s2, written after the bad record, is missing")
	}
	mu.Lock()
	for _, c := range changes {
		if c.next == "" {
			t.Errorf("change %+v: the undecodable record was taken for a deletion", c)
		}
	}
	mu.Unlock() // OnChange runs on the view's goroutine: do not hold it up

	// Still following: a later write arrives.
	r := f.put("s3", sub("s3", "later"), nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := v.WaitFor(ctx, r.Partition, r.Offset); err != nil {
		t.Fatal(err)
	}
	if _, ok := v.Get("s3"); !ok {
		t.Error("s3 missing after the undecodable record")
	}
}

func TestViewList(t *testing.T) {
	f := newFixture(t)
	older, newer := sub("s_b", "older"), sub("s_a", "newer")
	newer.CreatedAt = older.CreatedAt.Add(time.Minute)
	other := sub("s_c", "other tenant")
	other.Tenant = "globex"
	for _, s := range []*record.Subscription{newer, older, other} {
		f.put(s.ID, s, nil)
	}
	v := subscription.NewView(f.cfg.Topics, f.codecs, testinfra.Logger())
	f.start(v)
	waitReady(t, v)
	got := v.List("acme")
	if len(got) != 2 || got[0].ID != "s_b" || got[1].ID != "s_a" {
		var ids []string
		for _, s := range got {
			ids = append(ids, s.ID)
		}
		t.Errorf("List(acme) = %v, want [s_b s_a] (oldest first)", ids)
	}
	if n := len(v.List("nobody")); n != 0 {
		t.Errorf("List(nobody) has %d subscriptions", n)
	}
}

// putStatus writes Hookline's status of id (a tombstone when st is nil)
// and returns where it landed.
func (f *fixture) putStatus(id string, st *record.EndpointStatus) *kgo.Record {
	f.t.Helper()
	var value []byte
	if st != nil {
		v, err := f.codecs.Status.Marshal(st)
		if err != nil {
			f.t.Fatal(err)
		}
		value = v
	}
	return f.produce(f.cfg.Topics.EndpointStatus, id, value)
}

func disabledAt(s *record.Subscription, at time.Time) *record.EndpointStatus {
	return &record.EndpointStatus{SubscriptionID: s.ID, Tenant: s.Tenant, DisabledReason: subscription.ReasonGone,
		DisabledAt: at, SubscriptionUpdatedAt: s.UpdatedAt}
}

func TestEffective(t *testing.T) {
	v1 := sub("s1", "v1")
	v2 := sub("s1", "v2")
	v2.UpdatedAt = v1.UpdatedAt.Add(time.Second)
	off := sub("s1", "off")
	off.Enabled, off.DisabledReason = false, subscription.ReasonOwner
	at := v1.UpdatedAt.Add(time.Minute)
	tests := []struct {
		name       string
		sub        *record.Subscription
		status     *record.EndpointStatus
		enabled    bool
		reason     string
		updatedAt  time.Time
		sameRecord bool
	}{
		{"no status", v1, nil, true, "", v1.UpdatedAt, true},
		{"status of this version", v1, disabledAt(v1, at), false, subscription.ReasonGone, at, false},
		{"status of an older version: the owner's change wins", v2, disabledAt(v1, at), true, "", v2.UpdatedAt, true},
		{"disabled by its owner already: the owner's reason stays", off, disabledAt(off, at), false, subscription.ReasonOwner, off.UpdatedAt, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := subscription.Effective(tc.sub, tc.status)
			if got.Enabled != tc.enabled || got.DisabledReason != tc.reason || !got.UpdatedAt.Equal(tc.updatedAt) || (got == tc.sub) != tc.sameRecord {
				t.Errorf("enabled %v, reason %q, updated %v, same record %v; want %v, %q, %v, %v",
					got.Enabled, got.DisabledReason, got.UpdatedAt, got == tc.sub, tc.enabled, tc.reason, tc.updatedAt, tc.sameRecord)
			}
			if got != tc.sub && (got.Name != tc.sub.Name || !tc.sub.Enabled) {
				t.Errorf("the disabled copy lost the owner's fields or changed the record: %+v", got)
			}
		})
	}
	if subscription.Effective(nil, disabledAt(v1, at)) != nil {
		t.Error("a status without its subscription is a subscription")
	}
}

// TestViewMergesStatus: the view applies the sender's status to the
// version it names, reports the change, and lets any later owner version
// win, in whichever order the two topics are written or read.
func TestViewMergesStatus(t *testing.T) {
	f := newFixture(t)
	v := subscription.NewView(f.cfg.Topics, f.codecs, testinfra.Logger())
	changes := make(chan *record.Subscription, 16)
	v.OnChange(func(_, next *record.Subscription) { changes <- next })
	f.start(v)
	waitReady(t, v)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	sync := func() {
		t.Helper()
		if err := v.Sync(ctx); err != nil {
			t.Fatal(err)
		}
	}
	drain := func() []*record.Subscription {
		var out []*record.Subscription
		for {
			select {
			case c := <-changes:
				out = append(out, c)
			default:
				return out
			}
		}
	}
	v1 := sub("s1", "v1")
	f.put("s1", v1, nil)
	sync()
	drain()

	at := v1.UpdatedAt.Add(time.Hour)
	r := f.putStatus("s1", disabledAt(v1, at))
	if err := v.WaitForStatus(ctx, r.Partition, r.Offset); err != nil {
		t.Fatal(err)
	}
	got, _ := v.Get("s1")
	if got.Enabled || got.DisabledReason != subscription.ReasonGone || !got.UpdatedAt.Equal(at) || got.Name != "v1" {
		t.Errorf("after the status: %+v, want v1 disabled by Hookline at %v", got, at)
	}
	if c := drain(); len(c) != 1 || c[0].Enabled {
		t.Errorf("changes %v, want one: disabled", c)
	}

	// The owner re-enables it (a new version): the status no longer
	// applies, and a stale status written after it changes nothing.
	v2 := sub("s1", "v2")
	v2.UpdatedAt = v1.UpdatedAt.Add(2 * time.Hour)
	f.put("s1", v2, nil)
	sync()
	f.putStatus("s1", disabledAt(v1, at.Add(time.Minute)))
	sync()
	if got, _ := v.Get("s1"); !got.Enabled || got.Name != "v2" {
		t.Errorf("after the owner's change and a stale status: %+v, want v2 enabled", got)
	}
	if c := drain(); len(c) != 1 || !c[0].Enabled || c[0].Name != "v2" {
		t.Errorf("changes %v, want one: v2 enabled (the stale status reports nothing)", c)
	}

	// A status read before its subscription (the two topics are read side
	// by side) applies once the subscription arrives: a new view reading
	// both from the start agrees with the one that followed them.
	v3 := sub("s2", "v3")
	f.putStatus("s2", disabledAt(v3, at))
	f.put("s2", v3, nil)
	fresh := subscription.NewView(f.cfg.Topics, f.codecs, testinfra.Logger())
	f.start(fresh)
	waitReady(t, fresh)
	sync()
	for _, view := range []*subscription.View{v, fresh} {
		if got, ok := view.Get("s2"); !ok || got.Enabled {
			t.Errorf("s2 = %+v, want disabled by its status", got)
		}
		if got, ok := view.Get("s1"); !ok || !got.Enabled || got.Name != "v2" {
			t.Errorf("s1 = %+v, want v2 enabled", got)
		}
	}

	// Deleting the subscription deletes it whatever its status says.
	f.put("s2", nil, nil)
	sync()
	if got, ok := v.Get("s2"); ok {
		t.Errorf("deleted s2 is still there: %+v", got)
	}
	if n := v.Len(); n != 1 {
		t.Errorf("Len = %d, want 1", n)
	}
}
