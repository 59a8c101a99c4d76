package kafka_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/pkg/kafka"
	"github.com/hookline/hookline/pkg/testinfra"
)

// pos is one record's place in its topic.
type pos struct {
	partition int32
	offset    int64
}

// produce writes n records with distinct keys to topic and returns where
// each landed.
func produce(t *testing.T, cl *kgo.Client, topic, tag string, n int) []pos {
	t.Helper()
	recs := make([]*kgo.Record, n)
	for i := range recs {
		recs[i] = &kgo.Record{Topic: topic, Key: fmt.Appendf(nil, "%s-%d", tag, i), Value: fmt.Appendf(nil, "%d", i)}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res := cl.ProduceSync(ctx, recs...)
	if err := res.FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	out := make([]pos, len(res))
	for i, r := range res {
		out[i] = pos{r.Record.Partition, r.Record.Offset}
	}
	return out
}

// ledger records what handlers saw and finished.
type ledger struct {
	mu      sync.Mutex
	handled map[pos]int                // successful handler calls per record
	order   map[string]map[int32]int64 // per consumer and partition: last offset handled
	owners  map[int32]map[string]bool  // who handled each partition
	through map[int32]int64            // highest offset handled by anyone
	errs    []string
}

func newLedger() *ledger {
	return &ledger{handled: map[pos]int{}, order: map[string]map[int32]int64{}, owners: map[int32]map[string]bool{}, through: map[int32]int64{}}
}

// handle records a successful batch by consumer who.
func (l *ledger) handle(who string, b kafka.Batch) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.order[who] == nil {
		l.order[who] = map[int32]int64{}
	}
	if l.owners[b.Partition] == nil {
		l.owners[b.Partition] = map[string]bool{}
	}
	l.owners[b.Partition][who] = true
	for _, r := range b.Records {
		if last, ok := l.order[who][r.Partition]; ok && r.Offset <= last {
			l.errs = append(l.errs, fmt.Sprintf("%s: partition %d offset %d after %d", who, r.Partition, r.Offset, last))
		}
		l.order[who][r.Partition] = r.Offset
		l.handled[pos{r.Partition, r.Offset}]++
		l.through[r.Partition] = max(l.through[r.Partition], r.Offset)
	}
}

func (l *ledger) count(want []pos) (missing int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, p := range want {
		if l.handled[p] == 0 {
			missing++
		}
	}
	return missing
}

func (l *ledger) check(t *testing.T) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, e := range l.errs {
		t.Error(e)
	}
}

// run starts c and returns a stop function that cancels it and waits for
// Run to return.
func run(t *testing.T, c *kafka.Consumer) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Errorf("Run did not return 30s after its context ended")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func newConsumer(t *testing.T, cfg kafka.Config, group string, topics []string, h kafka.Handler, extra ...kgo.Opt) *kafka.Consumer {
	t.Helper()
	c, err := kafka.NewConsumer(cfg, group, topics, h, testinfra.Logger(), extra...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func client(t *testing.T, cfg kafka.Config, extra ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kafka.NewClient(cfg, testinfra.Logger(), extra...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// committed returns the group's committed offsets of topic.
func committed(t *testing.T, adm *kadm.Client, group, topic string) map[int32]int64 {
	t.Helper()
	out, err := fetchCommitted(adm, group, topic)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func fetchCommitted(adm *kadm.Client, group, topic string) (map[int32]int64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	offs, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		return nil, fmt.Errorf("fetch offsets of %s: %w", group, err)
	}
	out := map[int32]int64{}
	offs.Each(func(o kadm.OffsetResponse) {
		if o.Topic == topic && o.Err == nil {
			out[o.Partition] = o.At
		}
	})
	return out, nil
}

// ends returns the end offset of each partition of topic among produced.
func ends(produced []pos) map[int32]int64 {
	out := map[int32]int64{}
	for _, p := range produced {
		out[p.partition] = max(out[p.partition], p.offset+1)
	}
	return out
}

// waitCommitted waits until group has committed want (partition -> next
// offset) on topic.
func waitCommitted(t *testing.T, adm *kadm.Client, group, topic string, want map[int32]int64, timeout time.Duration) {
	t.Helper()
	waitFor(t, timeout, "every input offset committed", func() bool {
		got := committed(t, adm, group, topic)
		for p, end := range want {
			if got[p] != end {
				return false
			}
		}
		return true
	})
}

func TestConsumerHandlesEveryRecordOnceInOrder(t *testing.T) {
	cfg := testinfra.Kafka(t)
	topic, group := cfg.Topics.Events, cfg.Topics.Prefix+"once"
	produced := produce(t, client(t, cfg), topic, "a", 600)
	l := newLedger()
	c := newConsumer(t, cfg, group, []string{topic}, func(_ context.Context, b kafka.Batch) error {
		l.handle("c", b)
		return nil
	})
	stop := run(t, c)
	waitFor(t, 30*time.Second, "every record handled", func() bool { return l.count(produced) == 0 })
	stop()

	l.check(t)
	l.mu.Lock()
	for p, n := range l.handled {
		if n != 1 {
			t.Errorf("partition %d offset %d handled %d times, want once", p.partition, p.offset, n)
		}
	}
	if len(l.handled) != len(produced) {
		t.Errorf("handled %d records, want %d", len(l.handled), len(produced))
	}
	l.mu.Unlock()
	got := committed(t, kadm.NewClient(client(t, cfg)), group, topic)
	for p, end := range ends(produced) {
		if got[p] != end {
			t.Errorf("partition %d: committed %d after stopping, want the end %d", p, got[p], end)
		}
	}
}

func TestConsumerRestartLosesNothing(t *testing.T) {
	cfg := testinfra.Kafka(t)
	topic, group := cfg.Topics.Events, cfg.Topics.Prefix+"restart"
	prod := client(t, cfg)
	var produced []pos
	for i := range 30 { // many small record batches, so many handler batches
		produced = append(produced, produce(t, prod, topic, fmt.Sprint(i), 30)...)
	}
	adm := kadm.NewClient(client(t, cfg))

	// The first consumer is slow and stops after some batches, while an
	// observer checks that commits never run ahead of what was handled.
	first := newLedger()
	var (
		mu      sync.Mutex
		batches int
	)
	enough := make(chan struct{})
	c1 := newConsumer(t, cfg, group, []string{topic}, func(_ context.Context, b kafka.Batch) error {
		time.Sleep(20 * time.Millisecond)
		first.handle("c1", b)
		mu.Lock()
		if batches++; batches == 6 {
			close(enough)
		}
		mu.Unlock()
		return nil
	}, kgo.FetchMaxPartitionBytes(2000), kgo.AutoCommitInterval(100*time.Millisecond))
	stop1 := run(t, c1)
	observed := make(chan struct{})
	go func() {
		defer close(observed)
		for {
			select {
			case <-enough:
				return
			default:
			}
			commits, err := fetchCommitted(adm, group, topic)
			if err != nil {
				continue // the broker is busy; the final check still runs
			}
			first.mu.Lock()
			for p, at := range commits {
				if at > 0 && first.handled[pos{p, at - 1}] == 0 {
					t.Errorf("partition %d committed at %d before offset %d was handled", p, at, at-1)
				}
			}
			first.mu.Unlock()
			time.Sleep(30 * time.Millisecond)
		}
	}()
	select {
	case <-enough:
	case <-time.After(30 * time.Second):
		t.Fatal("the first consumer handled fewer than 6 batches in 30s")
	}
	stop1()
	<-observed
	first.check(t)
	commits := committed(t, adm, group, topic)
	first.mu.Lock()
	for p, at := range commits {
		for o := int64(0); o < at; o++ {
			if first.handled[pos{p, o}] == 0 {
				t.Errorf("partition %d: committed %d but offset %d was never handled", p, at, o)
			}
		}
	}
	handledFirst := len(first.handled)
	first.mu.Unlock()
	if handledFirst == 0 || handledFirst >= len(produced) {
		t.Fatalf("first consumer handled %d of %d records; the test needs a partial run", handledFirst, len(produced))
	}

	second := newLedger()
	c2 := newConsumer(t, cfg, group, []string{topic}, func(_ context.Context, b kafka.Batch) error {
		second.handle("c2", b)
		return nil
	})
	stop2 := run(t, c2)
	missing := func() int {
		n := 0
		for _, p := range produced {
			first.mu.Lock()
			a := first.handled[p]
			first.mu.Unlock()
			second.mu.Lock()
			b := second.handled[p]
			second.mu.Unlock()
			if a+b == 0 {
				n++
			}
		}
		return n
	}
	waitFor(t, 30*time.Second, "every record handled by one of the consumers", func() bool { return missing() == 0 })
	stop2()
	second.check(t)
	// The second consumer started exactly at the first one's commits.
	second.mu.Lock()
	defer second.mu.Unlock()
	for p, at := range commits {
		if at < ends(produced)[p] && second.handled[pos{p, at}] == 0 {
			t.Errorf("partition %d: the second consumer did not start at the committed offset %d", p, at)
		}
		if at > 0 && second.handled[pos{p, at - 1}] != 0 {
			t.Errorf("partition %d: the second consumer re-read offset %d below the commit %d", p, at-1, at)
		}
	}
}

func TestConsumerRetriesFailedBatch(t *testing.T) {
	cfg := testinfra.Kafka(t)
	topic, group := cfg.Topics.Events, cfg.Topics.Prefix+"retry"
	produced := produce(t, client(t, cfg), topic, "a", 200)
	poison := produced[len(produced)/2] // fails twice, then succeeds
	var (
		mu       sync.Mutex
		attempts int
	)
	l := newLedger()
	c := newConsumer(t, cfg, group, []string{topic}, func(_ context.Context, b kafka.Batch) error {
		if b.Partition == poison.partition && b.Records[0].Offset <= poison.offset && poison.offset <= b.Records[len(b.Records)-1].Offset {
			mu.Lock()
			attempts++
			n := attempts
			mu.Unlock()
			if n <= 2 {
				return errors.New("broker unavailable")
			}
		}
		l.handle("c", b)
		return nil
	})
	stop := run(t, c)
	waitFor(t, 30*time.Second, "every record handled", func() bool { return l.count(produced) == 0 })
	stop()
	l.check(t)
	mu.Lock()
	if attempts != 3 {
		t.Errorf("the failing batch was tried %d times, want 3", attempts)
	}
	mu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, p := range produced {
		if n := l.handled[p]; n != 1 {
			t.Errorf("partition %d offset %d handled %d times, want once", p.partition, p.offset, n)
		}
	}
}

// TestConsumerRetriesFromLastDone fails a batch after the handler marked
// part of it Done: the retry starts after the Done record.
func TestConsumerRetriesFromLastDone(t *testing.T) {
	cfg := testinfra.Kafka(t)
	topic, group := cfg.Topics.Events, cfg.Topics.Prefix+"done"
	produced := produce(t, client(t, cfg), topic, "a", 60)
	var (
		mu     sync.Mutex
		doneAt = map[int32]pos{} // the record marked Done in each partition's failed batch
		seen   = map[pos]int{}
	)
	c := newConsumer(t, cfg, group, []string{topic}, func(_ context.Context, b kafka.Batch) error {
		mu.Lock()
		defer mu.Unlock()
		for _, r := range b.Records {
			seen[pos{r.Partition, r.Offset}]++
		}
		if _, failed := doneAt[b.Partition]; !failed && len(b.Records) >= 2 {
			doneAt[b.Partition] = pos{b.Partition, b.Records[0].Offset}
			b.Done(b.Records[0])
			return errors.New("fail after the first record")
		}
		return nil
	})
	stop := run(t, c)
	waitFor(t, 30*time.Second, "every record handled and the failed batches retried", func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, p := range produced {
			if seen[p] == 0 {
				return false
			}
		}
		for _, p := range doneAt {
			if seen[pos{p.partition, p.offset + 1}] < 2 {
				return false
			}
		}
		return len(doneAt) > 0
	})
	stop()
	mu.Lock()
	defer mu.Unlock()
	if len(doneAt) == 0 {
		t.Fatal("no batch had two records; the test proves nothing")
	}
	for _, p := range doneAt {
		if seen[p] != 1 {
			t.Errorf("partition %d: the record marked Done (offset %d) was handled %d times, want once", p.partition, p.offset, seen[p])
		}
		if next := (pos{p.partition, p.offset + 1}); seen[next] != 2 {
			t.Errorf("partition %d: the record after the Done one was handled %d times, want twice", p.partition, seen[next])
		}
	}
	for _, p := range produced {
		if seen[p] == 0 || seen[p] > 2 {
			t.Errorf("partition %d offset %d handled %d times, want 1 or 2", p.partition, p.offset, seen[p])
		}
	}
}

// TestConsumerBusyPartitionDoesNotBlockOthers keeps one partition's
// handler busy while many more batches of it arrive: records produced to
// the other partitions afterwards are still handled.
func TestConsumerBusyPartitionDoesNotBlockOthers(t *testing.T) {
	cfg := testinfra.Kafka(t)
	topic, group := cfg.Topics.Events, cfg.Topics.Prefix+"busy"
	prod := client(t, cfg, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// Partition 0 gets many small record batches, fetched a few at a time.
	for i := range 40 {
		if err := prod.ProduceSync(ctx, &kgo.Record{Topic: topic, Partition: 0, Value: fmt.Appendf(nil, "%0200d", i)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	busy, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	l := newLedger()
	c := newConsumer(t, cfg, group, []string{topic}, func(ctx context.Context, b kafka.Batch) error {
		if b.Partition == 0 {
			once.Do(func() { close(busy) })
			select {
			case <-release:
			case <-b.Stopping():
				return errors.New("stopping")
			}
		}
		l.handle("c", b)
		return nil
	}, kgo.FetchMaxPartitionBytes(300))
	stop := run(t, c)
	defer stop()
	select {
	case <-busy:
	case <-time.After(30 * time.Second):
		t.Fatal("partition 0 was never handled")
	}
	time.Sleep(time.Second) // let the rest of partition 0 arrive behind the busy handler

	var later []*kgo.Record
	for i := range 20 {
		later = append(later, &kgo.Record{Topic: topic, Partition: int32(1 + i%2), Value: []byte("x")})
	}
	if err := prod.ProduceSync(ctx, later...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	var want []pos
	for _, r := range later {
		want = append(want, pos{r.Partition, r.Offset})
	}
	waitFor(t, 20*time.Second, "partitions 1 and 2 handled while partition 0 is busy", func() bool { return l.count(want) == 0 })
	close(release)
	waitFor(t, 20*time.Second, "partition 0 handled once released", func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		return l.through[0] == 39
	})
	l.check(t)
}

// TestConsumerRevokeStopsWaitingHandler has a handler wait forever (until
// Stopping) on every partition; a second member joining must still get
// partitions, and the records of the moved partitions are handled there.
func TestConsumerRevokeStopsWaitingHandler(t *testing.T) {
	cfg := testinfra.Kafka(t)
	topic, group := cfg.Topics.Events, cfg.Topics.Prefix+"revoke"
	produced := produce(t, client(t, cfg), topic, "a", 90)
	var (
		mu      sync.Mutex
		stopped int
	)
	waiting := func(_ context.Context, b kafka.Batch) error {
		<-b.Stopping()
		mu.Lock()
		stopped++
		mu.Unlock()
		return errors.New("revoked while waiting")
	}
	c1 := newConsumer(t, cfg, group, []string{topic}, waiting)
	stop1 := run(t, c1)
	adm := kadm.NewClient(client(t, cfg))
	waitForMembers(t, adm, group, 1)

	l := newLedger()
	c2 := newConsumer(t, cfg, group, []string{topic}, func(_ context.Context, b kafka.Batch) error {
		l.handle("c2", b)
		return nil
	})
	stop2 := run(t, c2)
	defer stop2()
	waitFor(t, 40*time.Second, "the second member handling records", func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		return len(l.handled) > 0
	})
	mu.Lock()
	if stopped == 0 {
		t.Error("no waiting handler was told to stop when its partition moved")
	}
	mu.Unlock()
	start := time.Now()
	stop1()
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("stopping a consumer whose handlers wait took %v", took)
	}
	waitFor(t, 40*time.Second, "every record handled after the first member left", func() bool { return l.count(produced) == 0 })
	l.check(t)
}

func waitForMembers(t *testing.T, adm *kadm.Client, group string, n int) {
	t.Helper()
	waitFor(t, 40*time.Second, fmt.Sprintf("%d stable members in %s", n, group), func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		groups, err := adm.DescribeGroups(ctx, group)
		if err != nil {
			return false
		}
		g := groups[group]
		if g.State != "Stable" || len(g.Members) != n {
			return false
		}
		for _, m := range g.Members {
			if a, ok := m.Assigned.AsConsumer(); !ok || len(a.Topics) == 0 {
				return false
			}
		}
		return true
	})
}

// TestConsumerGroupRebalance splits partitions between two members, then a
// third joins and leaves while records keep coming: nothing is lost.
func TestConsumerGroupRebalance(t *testing.T) {
	cfg := testinfra.Kafka(t)
	topic, group := cfg.Topics.Events, cfg.Topics.Prefix+"rebalance"
	prod := client(t, cfg)
	adm := kadm.NewClient(client(t, cfg))
	l := newLedger()
	handler := func(who string) kafka.Handler {
		return func(_ context.Context, b kafka.Batch) error {
			time.Sleep(5 * time.Millisecond)
			l.handle(who, b)
			return nil
		}
	}
	var produced []pos
	produced = append(produced, produce(t, prod, topic, "before", 300)...)
	stopA := run(t, newConsumer(t, cfg, group, []string{topic}, handler("a")))
	stopB := run(t, newConsumer(t, cfg, group, []string{topic}, handler("b")))
	defer stopA()
	defer stopB()
	waitForMembers(t, adm, group, 2)
	produced = append(produced, produce(t, prod, topic, "two", 300)...)
	waitFor(t, 30*time.Second, "the first records handled", func() bool { return l.count(produced) == 0 })

	// Each partition was handled by one member since the split, and both
	// members have some.
	groups, err := adm.DescribeGroups(context.Background(), group)
	if err != nil {
		t.Fatal(err)
	}
	owned := map[int32]int{}
	for _, m := range groups[group].Members {
		a, _ := m.Assigned.AsConsumer()
		n := 0
		for _, at := range a.Topics {
			for _, p := range at.Partitions {
				owned[p]++
				n++
			}
		}
		if n == 0 {
			t.Errorf("member %s has no partition", m.MemberID)
		}
	}
	if len(owned) != 3 {
		t.Errorf("partitions owned: %v, want all 3 once", owned)
	}
	for p, n := range owned {
		if n != 1 {
			t.Errorf("partition %d owned by %d members", p, n)
		}
	}

	// A third member joins and leaves while records keep coming.
	produceDone := make(chan []pos)
	go func() {
		var more []pos
		defer func() { produceDone <- more }()
		for i := range 40 {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			res := prod.ProduceSync(ctx, &kgo.Record{Topic: topic, Key: fmt.Appendf(nil, "during-%d", i)},
				&kgo.Record{Topic: topic, Key: fmt.Appendf(nil, "during-%d-b", i)}, &kgo.Record{Topic: topic, Key: fmt.Appendf(nil, "during-%d-c", i)})
			cancel()
			for _, r := range res {
				if r.Err != nil {
					t.Errorf("produce: %v", r.Err)
					return
				}
				more = append(more, pos{r.Record.Partition, r.Record.Offset})
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	stopC := run(t, newConsumer(t, cfg, group, []string{topic}, handler("c")))
	waitForMembers(t, adm, group, 3)
	waitFor(t, 20*time.Second, "the third member handling records", func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		return l.owners[0]["c"] || l.owners[1]["c"] || l.owners[2]["c"]
	})
	stopC()
	waitForMembers(t, adm, group, 2)
	produced = append(produced, <-produceDone...)
	waitFor(t, 40*time.Second, "every record handled", func() bool { return l.count(produced) == 0 })
	l.check(t)
	l.mu.Lock()
	defer l.mu.Unlock()
	dups := 0
	for _, n := range l.handled {
		dups += n - 1
	}
	t.Logf("%d records, %d handled twice across the rebalances", len(produced), dups)
}

// TestTransactorCommitsOrAbortsTogether checks both outcomes of a
// transaction: committed records come with committed offsets, and a failed
// produce leaves neither.
func TestTransactorCommitsOrAbortsTogether(t *testing.T) {
	cfg := testinfra.Kafka(t)
	in, out, group := cfg.Topics.Events, cfg.Topics.Deliveries, cfg.Topics.Prefix+"txn"
	produced := produce(t, client(t, cfg), in, "a", 60)
	var tx *kafka.Transactor
	var (
		mu       sync.Mutex
		failures int
	)
	c := newConsumer(t, cfg, group, []string{in}, func(ctx context.Context, b kafka.Batch) error {
		recs := []*kgo.Record{}
		for _, r := range b.Records {
			recs = append(recs, &kgo.Record{Topic: out, Key: r.Key, Value: r.Value})
		}
		mu.Lock()
		fail := failures < 2
		if fail {
			failures++
			// A topic that does not exist fails the produce: the
			// transaction aborts and its other records stay invisible.
			recs = append(recs, &kgo.Record{Topic: cfg.Topics.Prefix + "missing", Value: []byte("x")})
		}
		mu.Unlock()
		return tx.Commit(ctx, recs, b.Records[len(b.Records)-1])
	}, kgo.FetchMaxPartitionBytes(500))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	tx, err := kafka.NewTransactor(ctx, cfg, c, cfg.Topics.Prefix+"txn-1", testinfra.Logger(), kgo.UnknownTopicRetries(1))
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	stop := run(t, c)
	adm := kadm.NewClient(client(t, cfg))
	waitCommitted(t, adm, group, in, ends(produced), 40*time.Second)
	stop()

	// Read the output with read-committed: every input exactly once.
	reader := client(t, cfg, kgo.ConsumeTopics(out), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	seen := map[string]int{}
	rctx, rcancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer rcancel()
	for n := 0; n < len(produced); {
		fs := reader.PollFetches(rctx)
		if err := rctx.Err(); err != nil {
			t.Fatalf("read %d of %d outputs: %v", n, len(produced), err)
		}
		fs.EachRecord(func(r *kgo.Record) { seen[string(r.Key)]++; n++ })
	}
	mu.Lock()
	if failures != 2 {
		t.Errorf("%d transactions failed, want 2", failures)
	}
	mu.Unlock()
	keys := make([]string, 0, len(seen))
	for k, n := range seen {
		keys = append(keys, k)
		if n != 1 {
			t.Errorf("output %s visible %d times, want once", k, n)
		}
	}
	if len(keys) != len(produced) {
		slices.Sort(keys)
		t.Errorf("%d distinct outputs, want %d", len(keys), len(produced))
	}
}

func TestConsumerStaticMembership(t *testing.T) {
	cfg := testinfra.Kafka(t)
	cfg.InstanceID = "worker-1"
	topic, group := cfg.Topics.Events, cfg.Topics.Prefix+"static"
	prod := client(t, cfg)
	adm := kadm.NewClient(prod)
	members := func() []string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		groups, err := adm.DescribeGroups(ctx, group)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, m := range groups[group].Members {
			id := "(dynamic)"
			if m.InstanceID != nil {
				id = *m.InstanceID
			}
			ids = append(ids, id)
		}
		return ids
	}

	// The second consumer is the first one restarted under the same id: it
	// takes over the member the first left behind.
	for i := range 2 {
		produced := produce(t, prod, topic, fmt.Sprint(i), 50)
		l := newLedger()
		c := newConsumer(t, cfg, group, []string{topic}, func(_ context.Context, b kafka.Batch) error {
			l.handle("c", b)
			return nil
		})
		stop := run(t, c)
		waitFor(t, 30*time.Second, "every new record handled", func() bool { return l.count(produced) == 0 })
		if got := members(); !slices.Equal(got, []string{"worker-1"}) {
			t.Fatalf("run %d: members %v while consuming, want [worker-1]", i+1, got)
		}
		stop()
		// A static member does not leave when it stops: the group keeps
		// its partitions for it until it returns or its session expires.
		if got := members(); !slices.Equal(got, []string{"worker-1"}) {
			t.Fatalf("run %d: members %v after stopping, want [worker-1] still", i+1, got)
		}
		l.check(t)
	}
}
