package schedule_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/pkg/kafka"
	"github.com/hookline/hookline/pkg/record"
	"github.com/hookline/hookline/pkg/testinfra"
	"github.com/hookline/hookline/pkg/wire"
	"github.com/hookline/hookline/services/retry/internal/schedule"
)

const tier = time.Second

// env is one test's topics, codecs and a producer that picks partitions.
type env struct {
	t      testing.TB
	cfg    kafka.Config
	codecs *record.Codecs
	prod   *kgo.Client
	tier   string
}

func newEnv(t testing.TB) *env {
	t.Helper()
	cfg := testinfra.Kafka(t, tier)
	codecs, err := record.LoadCodecs()
	if err != nil {
		t.Fatal(err)
	}
	prod, err := kafka.NewClient(cfg, testinfra.Logger(), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(prod.Close)
	return &env{t: t, cfg: cfg, codecs: codecs, prod: prod, tier: cfg.Topics.Retry(tier)}
}

// scheduled is a delivery put on the tier.
type scheduled struct {
	id        string
	partition int32
	due       time.Time
}

// schedule writes deliveries due at the given times to the tier.
func (e *env) schedule(ds ...scheduled) {
	e.t.Helper()
	recs := make([]*kgo.Record, len(ds))
	for i, s := range ds {
		due := s.due.Truncate(time.Millisecond)
		d := record.Delivery{ID: s.id, Tenant: "acme", SubscriptionID: "sub_1", EventID: "evt_" + s.id, EventType: "order.created",
			URL: "https://example.com/hook", Payload: `{"n":1}`, CreatedAt: due.Add(-tier), EventTime: due.Add(-tier), Attempt: 2, DueAt: &due}
		v, err := e.codecs.Delivery.Marshal(&d)
		if err != nil {
			e.t.Fatal(err)
		}
		recs[i] = &kgo.Record{Topic: e.tier, Partition: s.partition, Key: []byte("sub_1"), Value: v,
			Headers: []kgo.RecordHeader{{Key: "traceparent", Value: []byte("00-" + s.id)}}}
	}
	e.produce(recs...)
}

func (e *env) produce(recs ...*kgo.Record) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := e.prod.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		e.t.Fatalf("produce: %v", err)
	}
}

// start runs a scheduler in group until the returned stop is called (or
// the test ends).
func (e *env) start(group, txnID string, extra ...kgo.Opt) (stop func()) {
	e.t.Helper()
	return e.startWatched(group, txnID, nil, extra...)
}

// startWatched is start with handed called with the id of each delivery
// the scheduler is handed, before it waits for its due time.
func (e *env) startWatched(group, txnID string, handed func(id string), extra ...kgo.Opt) (stop func()) {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	_, c, tx, err := newScheduler(ctx, e.cfg, group, txnID, []string{e.tier}, handed, extra...)
	if err != nil {
		cancel()
		e.t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case <-done:
			case <-time.After(30 * time.Second):
				e.t.Error("the scheduler did not stop within 30s")
			}
			tx.Close()
		})
	}
	e.t.Cleanup(stop)
	return stop
}

// newScheduler builds a scheduler; handed, when not nil, is called with
// the id of each delivery in a batch before the scheduler handles it.
func newScheduler(ctx context.Context, cfg kafka.Config, group, txnID string, topics []string, handed func(id string), extra ...kgo.Opt) (*schedule.Scheduler, *kafka.Consumer, *kafka.Transactor, error) {
	codecs, err := record.LoadCodecs()
	if err != nil {
		return nil, nil, nil, err
	}
	s := &schedule.Scheduler{Codecs: codecs, Topics: cfg.Topics, Log: testinfra.Logger(), Now: time.Now,
		Lateness: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "lateness"})}
	handle := s.Handle
	if handed != nil {
		handle = func(ctx context.Context, b kafka.Batch) error {
			for _, r := range b.Records {
				var d record.Delivery
				if codecs.Delivery.Unmarshal(r.Value, &d) == nil {
					handed(d.ID)
				}
			}
			return s.Handle(ctx, b)
		}
	}
	c, err := kafka.NewConsumer(cfg, group, topics, handle, testinfra.Logger(), extra...)
	if err != nil {
		return nil, nil, nil, err
	}
	tctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	tx, err := kafka.NewTransactor(tctx, cfg, c, txnID, testinfra.Logger())
	if err != nil {
		c.Client().Close()
		return nil, nil, nil, err
	}
	s.Release = tx.Commit
	return s, c, tx, nil
}

// release is a record the scheduler put back on deliveries or the DLQ.
type release struct {
	topic     string
	id        string    // delivery id; "" when undecodable
	stamp     time.Time // the record's timestamp: when it was produced
	received  time.Time
	delivery  record.Delivery
	headers   map[string]string
	partition int32
	value     []byte
}

// collector reads deliveries and the DLQ as read-committed consumers do.
type collector struct {
	mu  sync.Mutex
	got []release
}

func (e *env) collect() *collector {
	e.t.Helper()
	cl, err := kafka.NewClient(e.cfg, testinfra.Logger(), kgo.ConsumeTopics(e.cfg.Topics.Deliveries, e.cfg.Topics.DLQ),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.FetchMaxWait(100*time.Millisecond))
	if err != nil {
		e.t.Fatal(err)
	}
	col := &collector{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			fs := cl.PollFetches(ctx)
			if ctx.Err() != nil {
				return
			}
			now := time.Now()
			fs.EachRecord(func(r *kgo.Record) {
				rel := release{topic: r.Topic, stamp: r.Timestamp, received: now, partition: r.Partition, value: r.Value, headers: map[string]string{}}
				for _, h := range r.Headers {
					rel.headers[h.Key] = string(h.Value)
				}
				if err := e.codecs.Delivery.Unmarshal(r.Value, &rel.delivery); err == nil {
					rel.id = rel.delivery.ID
				}
				col.mu.Lock()
				col.got = append(col.got, rel)
				col.mu.Unlock()
			})
		}
	}()
	e.t.Cleanup(func() {
		cancel()
		<-done
		cl.Close()
	})
	return col
}

// released returns what arrived so far, by delivery id.
func (c *collector) released() map[string][]release {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string][]release{}
	for _, r := range c.got {
		out[r.id] = append(out[r.id], r)
	}
	return out
}

func (c *collector) waitFor(t testing.TB, timeout time.Duration, ids ...string) map[string][]release {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got := c.released()
		missing := 0
		for _, id := range ids {
			if len(got[id]) == 0 {
				missing++
			}
		}
		if missing == 0 {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d deliveries not released after %v", missing, len(ids), timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// checkReleases asserts that every scheduled delivery was released to
// deliveries exactly once, not before its due time, and (unless late is 0)
// no later than late after it.
func checkReleases(t testing.TB, ds []scheduled, got map[string][]release, late time.Duration) {
	t.Helper()
	for _, s := range ds {
		rs := got[s.id]
		if len(rs) != 1 {
			t.Errorf("%s released %d times, want once", s.id, len(rs))
			continue
		}
		r := rs[0]
		due := s.due.Truncate(time.Millisecond)
		if r.topic == "" || !strings.HasSuffix(r.topic, "deliveries") {
			t.Errorf("%s released to %s", s.id, r.topic)
		}
		if r.stamp.Before(due) || r.received.Before(due) {
			t.Errorf("%s released early: produced %v, received %v, due %v", s.id, r.stamp, r.received, due)
		}
		if late > 0 && r.stamp.Sub(due) > late {
			t.Errorf("%s released %v after its due time, want within %v", s.id, r.stamp.Sub(due), late)
		}
		if r.delivery.DueAt != nil {
			t.Errorf("%s released with due_at %v, want none", s.id, *r.delivery.DueAt)
		}
		if r.delivery.Attempt != 2 || r.delivery.EventID != "evt_"+s.id || r.delivery.SubscriptionID != "sub_1" {
			t.Errorf("%s released as %+v, want the scheduled delivery", s.id, r.delivery)
		}
		if r.headers["traceparent"] != "00-"+s.id {
			t.Errorf("%s lost its headers: %v", s.id, r.headers)
		}
	}
}

func ids(ds []scheduled) []string {
	out := make([]string, len(ds))
	for i, s := range ds {
		out[i] = s.id
	}
	return out
}

func TestReleasesDueRecordsAtOnce(t *testing.T) {
	e := newEnv(t)
	now := time.Now()
	var ds []scheduled
	for i := range 30 {
		ds = append(ds, scheduled{id: fmt.Sprintf("past%d", i), partition: int32(i % 3), due: now.Add(-time.Minute + time.Duration(i)*time.Millisecond)})
	}
	e.schedule(ds...)
	col := e.collect()
	e.start(e.cfg.Topics.Prefix+"retry", e.cfg.Topics.Prefix+"txn-1")
	got := col.waitFor(t, 20*time.Second, ids(ds)...)
	checkReleases(t, ds, got, 0)
}

func TestReleasesNotBeforeDue(t *testing.T) {
	e := newEnv(t)
	col := e.collect()
	e.start(e.cfg.Topics.Prefix+"retry", e.cfg.Topics.Prefix+"txn-1")
	now := time.Now()
	var ds []scheduled
	for i := range 30 {
		due := now.Add(time.Second + time.Duration(i)*1000*time.Millisecond/30) // spread over 1-2s
		ds = append(ds, scheduled{id: fmt.Sprintf("soon%d", i), partition: int32(i % 3), due: due})
	}
	e.schedule(ds...)
	got := col.waitFor(t, 20*time.Second, ids(ds)...)
	checkReleases(t, ds, got, 5*time.Second)
}

// TestPausedPartitionDoesNotHoldOthers puts a far-future record at the
// head of partition 0: partition 1's near records are still released, and
// nothing of partition 0 is released or committed.
func TestPausedPartitionDoesNotHoldOthers(t *testing.T) {
	e := newEnv(t)
	now := time.Now()
	far := []scheduled{{id: "far", partition: 0, due: now.Add(time.Hour)}, {id: "behind-far", partition: 0, due: now}}
	var near []scheduled
	for i := range 10 {
		near = append(near, scheduled{id: fmt.Sprintf("near%d", i), partition: 1, due: now.Add(time.Second + time.Duration(i)*50*time.Millisecond)})
	}
	e.schedule(far...)
	col := e.collect()
	group := e.cfg.Topics.Prefix + "retry"
	e.start(group, e.cfg.Topics.Prefix+"txn-1")
	e.schedule(near...)
	got := col.waitFor(t, 20*time.Second, ids(near)...)
	checkReleases(t, near, got, 5*time.Second)
	for _, s := range far {
		if len(got[s.id]) != 0 {
			t.Errorf("%s released before the far-future head of its partition", s.id)
		}
	}
	adm := kadm.NewClient(e.prod)
	offs, err := adm.FetchOffsets(context.Background(), group)
	if err != nil {
		t.Fatal(err)
	}
	if o, ok := offs.Lookup(e.tier, 0); ok && o.At > 0 {
		t.Errorf("partition 0 committed at %d while its head is not due", o.At)
	}
	if o, ok := offs.Lookup(e.tier, 1); !ok || o.At != int64(len(near)) {
		t.Errorf("partition 1 committed at %d, want %d", o.At, len(near))
	}
}

func TestUndecodableGoesToDLQ(t *testing.T) {
	e := newEnv(t)
	now := time.Now()
	e.produce(&kgo.Record{Topic: e.tier, Partition: 2, Key: []byte("sub_1"), Value: []byte("not a delivery"),
		Headers: []kgo.RecordHeader{{Key: "origin", Value: []byte("test")}}})
	after := []scheduled{{id: "after-bad", partition: 2, due: now}}
	e.schedule(after...)
	col := e.collect()
	e.start(e.cfg.Topics.Prefix+"retry", e.cfg.Topics.Prefix+"txn-1")
	got := col.waitFor(t, 20*time.Second, ids(after)...)
	checkReleases(t, after, got, time.Minute)
	bad := got[""]
	if len(bad) != 1 {
		t.Fatalf("%d undecodable records arrived, want 1 in the DLQ", len(bad))
	}
	tests := []struct {
		name string
		ok   bool
	}{
		{"in the dlq", strings.HasSuffix(bad[0].topic, "dlq")},
		{"original value kept", string(bad[0].value) == "not a delivery"},
		{"error header set", bad[0].headers[wire.HeaderError] != ""},
		{"original headers kept", bad[0].headers["origin"] == "test"},
	}
	for _, tc := range tests {
		if !tc.ok {
			t.Errorf("dead letter %+v: not %s", bad[0], tc.name)
		}
	}
}

// crashData is what the crash tests schedule: some records due already,
// released by the first scheduler, and some due later, which it holds
// (paused) when it stops or dies.
func crashData(now time.Time, later time.Duration) (due, pending []scheduled) {
	for p := range int32(3) {
		for i := range 3 {
			due = append(due, scheduled{id: fmt.Sprintf("due-%d-%d", p, i), partition: p, due: now.Add(-time.Second)})
		}
		for i := range 5 {
			pending = append(pending, scheduled{id: fmt.Sprintf("pending-%d-%d", p, i), partition: p,
				due: now.Add(later + time.Duration(i)*300*time.Millisecond)})
		}
	}
	return due, pending
}

// handed is the set of deliveries a scheduler was handed.
type handed struct {
	mu  sync.Mutex
	ids map[string]bool
}

func (h *handed) add(id string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.ids == nil {
		h.ids = map[string]bool{}
	}
	h.ids[id] = true
}

// waitFor returns once every one of ds was handed to the scheduler.
func (h *handed) waitFor(t testing.TB, timeout time.Duration, ds []scheduled) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		h.mu.Lock()
		missing := slices.IndexFunc(ds, func(s scheduled) bool { return !h.ids[s.id] })
		h.mu.Unlock()
		if missing < 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the scheduler was not handed %s within %v", ds[missing].id, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// crashSetup is how the crash tests reach the moment they stop or kill the
// first scheduler: it releases the due deliveries (so it runs), then
// holds pending ones, queued only now and due 4 s later. Queuing them
// only once the scheduler runs keeps its start (a group join and a
// transactional producer: seconds on a loaded machine) out of their
// delay; queued up front, they fell due during a slow start and were
// rightly released by the scheduler that was to be stopped mid-wait.
func crashSetup(t *testing.T, e *env, col *collector, got *handed) (due, pending []scheduled) {
	t.Helper()
	due, _ = crashData(time.Now(), 0)
	e.schedule(due...)
	col.waitFor(t, 30*time.Second, ids(due)...)
	_, pending = crashData(time.Now(), 4*time.Second)
	e.schedule(pending...)
	got.waitFor(t, 20*time.Second, pending)
	return due, pending
}

// checkHeld fails unless some pending delivery was still held, not
// released, when the first scheduler stopped: otherwise the test did not
// stop it mid-wait. Those it did release must not have been early, which
// checkReleases checks with the rest.
func checkHeld(t *testing.T, col *collector, pending []scheduled) {
	t.Helper()
	released := col.released()
	if !slices.ContainsFunc(pending, func(s scheduled) bool { return len(released[s.id]) == 0 }) {
		t.Fatal("every pending delivery was released before the scheduler stopped: it did not stop mid-wait")
	}
}

// TestStoppedMidWaitResumes stops a scheduler while it waits for due
// times; a new one in the same group releases the rest: none lost, none
// twice, none early.
func TestStoppedMidWaitResumes(t *testing.T) {
	e := newEnv(t)
	col := e.collect()
	group, txnID := e.cfg.Topics.Prefix+"retry", e.cfg.Topics.Prefix+"txn-1"
	var got handed
	stop := e.startWatched(group, txnID, got.add)
	due, pending := crashSetup(t, e, col, &got)
	stop()
	checkHeld(t, col, pending)
	e.start(group, txnID)
	all := append(due, pending...)
	col.waitFor(t, 30*time.Second, ids(all)...)
	time.Sleep(500 * time.Millisecond) // a duplicate would arrive with the rest
	checkReleases(t, all, col.released(), 10*time.Second)
}

// TestKilledSchedulerLosesNothing kills (SIGKILL) a scheduler process
// while it holds paused partitions; a new one in the same group releases
// every delivery exactly once and none early.
func TestKilledSchedulerLosesNothing(t *testing.T) {
	e := newEnv(t)
	col := e.collect()
	group, txnID := e.cfg.Topics.Prefix+"retry", e.cfg.Topics.Prefix+"txn-1"

	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperScheduler$")
	cmd.Env = append(os.Environ(), "HOOKLINE_SCHEDULER_HELPER=1", "HELPER_PREFIX="+e.cfg.Topics.Prefix,
		"HELPER_GROUP="+group, "HELPER_TXN="+txnID, "HELPER_TIER="+e.tier)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// The helper says which deliveries it was handed ("handed <id>"); the
	// rest of its output is passed on.
	var got handed
	read := make(chan struct{})
	go func() {
		defer close(read)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if id, ok := strings.CutPrefix(sc.Text(), helperHanded); ok {
				got.add(id)
			} else {
				fmt.Fprintln(os.Stderr, sc.Text())
			}
		}
	}()
	killed := false
	t.Cleanup(func() {
		if !killed {
			_ = cmd.Process.Kill()
			<-read
			_ = cmd.Wait()
		}
	})
	due, pending := crashSetup(t, e, col, &got)
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-read
	_ = cmd.Wait()
	killed = true
	checkHeld(t, col, pending)

	e.start(group, txnID)
	all := append(due, pending...)
	col.waitFor(t, 40*time.Second, ids(all)...)
	time.Sleep(500 * time.Millisecond) // a duplicate would arrive with the rest
	checkReleases(t, all, col.released(), 15*time.Second)
}

// helperHanded starts the helper's line for each delivery it was handed.
const helperHanded = "handed "

// TestHelperScheduler is the process TestKilledSchedulerLosesNothing kills.
func TestHelperScheduler(t *testing.T) {
	if os.Getenv("HOOKLINE_SCHEDULER_HELPER") == "" {
		t.Skip("run by TestKilledSchedulerLosesNothing")
	}
	cfg := kafka.Config{Brokers: strings.Split(os.Getenv("KAFKA_BROKERS"), ","), ClientID: "hookline-helper",
		Topics: wire.NewTopics(os.Getenv("HELPER_PREFIX")), Partitions: 3, ReplicationFactor: 1}
	ctx := context.Background()
	handed := func(id string) { fmt.Println(helperHanded + id) }
	// A short session lets the group notice the kill quickly.
	_, c, _, err := newScheduler(ctx, cfg, os.Getenv("HELPER_GROUP"), os.Getenv("HELPER_TXN"), []string{os.Getenv("HELPER_TIER")}, handed,
		kgo.SessionTimeout(6*time.Second), kgo.HeartbeatInterval(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	_ = c.Run(ctx) // until killed
}
