package kafka

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"golang.org/x/sync/errgroup"
)

// TxnBackoff is how long a transactional producer waits before asking
// again when the broker answers CONCURRENT_TRANSACTIONS: the previous
// transaction's markers are still being written, which takes about a
// millisecond on a healthy cluster. franz-go's 20 ms default was the
// largest part of the matcher's latency tail; franz-go raises the backoff
// itself past a second of retrying, so a slow coordinator is not hammered.
const TxnBackoff = 2 * time.Millisecond

// Transactor produces records and commits a Consumer's offsets in one Kafka
// transaction: either the records become visible to read-committed readers
// and the consumed records count as done, or neither happens.
//
// franz-go's GroupTransactSession commits every polled offset, which does
// not fit a handler that holds polled records back (the retry scheduler
// waits for due times). A Transactor instead commits exactly the offsets it
// is given, with the consumer's group generation, so a member that lost its
// partitions in a rebalance is fenced (KIP-447). Calls from several
// partitions' workers are grouped into one transaction.
type Transactor struct {
	producer *kgo.Client
	consumer *Consumer
	txnID    string
	timeout  time.Duration

	mu    sync.Mutex // guards queue and pace
	queue []*txnCall
	pace  pacer
	txnMu sync.Mutex // one transaction at a time

	topicIDs map[string][16]byte // guarded by txnMu
	// implicitOffsets: the cluster runs transactions v2 (KIP-890 part 2)
	// and takes TxnOffsetCommit v5, which adds the group's offsets to the
	// transaction itself, so AddOffsetsToTxn is skipped: one round trip
	// less per transaction, as franz-go's own session does.
	implicitOffsets bool

	fatalOnce sync.Once
	fatal     chan struct{} // closed once the producer can never commit again
	fatalErr  error         // set before fatal is closed
}

type txnCall struct {
	records []*kgo.Record
	through []*kgo.Record
	done    bool // guarded by txnMu
	err     error
}

// NewTransactor makes a transactional producer with id txnID (unique per
// running instance; a restarted instance reusing it fences its previous
// incarnation) for c, whose offsets are from then on committed only by
// Commit. Call it before c.Run.
func NewTransactor(ctx context.Context, cfg Config, c *Consumer, txnID string, log zerolog.Logger, extra ...kgo.Opt) (*Transactor, error) {
	const timeout = 30 * time.Second
	opts := append([]kgo.Opt{kgo.TransactionalID(txnID), kgo.TransactionTimeout(timeout), kgo.ConcurrentTransactionsBackoff(TxnBackoff)}, extra...)
	p, err := NewClient(cfg, log, opts...)
	if err != nil {
		return nil, err
	}
	// Initializing the producer id now aborts whatever a crashed
	// predecessor with the same id left open, so its pending offsets do
	// not hold up the group's offset fetch.
	if _, _, err := p.ProducerID(ctx); err != nil {
		p.Close()
		return nil, fmt.Errorf("init transactional producer %s: %w", txnID, err)
	}
	implicit, err := implicitOffsets(ctx, p)
	if err != nil {
		p.Close()
		return nil, fmt.Errorf("transactional producer %s: %w", txnID, err)
	}
	c.inTxn.Store(true)
	return &Transactor{producer: p, consumer: c, txnID: txnID, timeout: timeout, pace: pacer{interval: TxnInterval}, topicIDs: map[string][16]byte{},
		implicitOffsets: implicit, fatal: make(chan struct{})}, nil
}

// implicitOffsets reports whether the cluster's transactions add a group's
// offsets by themselves (KIP-890 part 2): the finalized feature
// transaction.version is at least 2 and TxnOffsetCommit v5 is served.
// franz-go's producer then runs its transactions as v2 too (it decides by
// the same feature), so the two agree.
func implicitOffsets(ctx context.Context, cl *kgo.Client) (bool, error) {
	resp, err := kmsg.NewPtrApiVersionsRequest().RequestWith(ctx, cl)
	if err == nil {
		err = kerr.ErrorForCode(resp.ErrorCode)
	}
	if err != nil {
		return false, fmt.Errorf("api versions: %w", err)
	}
	v2 := false
	for _, f := range resp.FinalizedFeatures {
		if f.Name == "transaction.version" && f.MaxVersionLevel >= 2 {
			v2 = true
		}
	}
	for _, k := range resp.ApiKeys {
		if k.ApiKey == int16(kmsg.TxnOffsetCommit) && k.MaxVersion >= 5 {
			return v2, nil
		}
	}
	return false, nil
}

// Fatal is closed when the producer can never commit again: another
// instance with the same transactional id fenced it, the broker refuses
// it the id, or a transaction could not be ended (errUnended). Retrying cannot help, so the service should exit and let its
// supervisor start it afresh; Err tells why.
func (t *Transactor) Fatal() <-chan struct{} { return t.fatal }

// Run runs the consumer until ctx ends (nil), it fails, or the producer
// can never commit again: then Run returns why, so that the service exits
// and its supervisor starts a fresh instance, which finishes the
// transaction this one could not end, rather than retrying forever.
func (t *Transactor) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return t.consumer.Run(ctx) })
	g.Go(func() error {
		select {
		case <-t.fatal:
			return t.fatalErr
		case <-ctx.Done():
			return nil
		}
	})
	return g.Wait()
}

// Err is the error that closed Fatal, or nil.
func (t *Transactor) Err() error {
	select {
	case <-t.fatal:
		return t.fatalErr
	default:
		return nil
	}
}

// errUnended marks a transaction that could be neither committed nor
// aborted (the broker died, or refused the end without saying the
// transaction is abortable): its outcome is unknown and the producer stays
// in it, so every later Begin fails. Only a new producer with the same
// transactional id, as a restarted instance makes, finishes it (fencing
// this one): the retry service stalled on this, releasing nothing, until
// it was made fatal.
var errUnended = errors.New("the transaction could not be ended")

// isFatal reports whether err leaves the transactional producer unusable.
func isFatal(err error) bool {
	return errors.Is(err, kerr.ProducerFenced) || errors.Is(err, kerr.TransactionalIDAuthorizationFailed) ||
		errors.Is(err, kerr.ClusterAuthorizationFailed) || errors.Is(err, errUnended)
}

// Close closes the producer.
func (t *Transactor) Close() { t.producer.Close() }

// Producer is the transactional client, for tests that flush what a
// transaction has produced so far before they crash it. Produce only
// through Commit: a record produced beside it joins whatever transaction
// is open, or fails outside one.
func (t *Transactor) Producer() *kgo.Client { return t.producer }

// Commit produces records and commits the consumer's offsets past each
// record in through, atomically, and returns once the transaction is
// committed. Calls that come while a transaction is under way share the
// next one, and under a steady load transactions begin at most every
// TxnInterval (pacer). When no call of a transaction has a record (the matcher's
// events that match nothing), the offsets are committed without a
// transaction: there is nothing to keep atomic with them, and a plain
// commit costs the broker a fraction of a transaction; it carries the
// member's generation, so a member fenced by a rebalance cannot make it
// either. A transaction once begun is always
// finished, so ctx's cancellation is ignored; it is bounded by the
// transaction timeout. An error means the transaction was aborted, except
// when ending it failed without an answer: then it may have committed, and
// a caller that retries releases its records twice (at-least-once, never
// lost).
func (t *Transactor) Commit(ctx context.Context, records []*kgo.Record, through ...*kgo.Record) error {
	if len(records) == 0 && len(through) == 0 {
		return nil
	}
	call := &txnCall{records: records, through: through}
	t.mu.Lock()
	t.queue = append(t.queue, call)
	t.pace.called(time.Now())
	t.mu.Unlock()

	t.txnMu.Lock()
	defer t.txnMu.Unlock()
	if call.done {
		return call.err // an earlier caller's transaction included it
	}
	if err := t.Err(); err != nil {
		return err
	}
	t.mu.Lock()
	wait := t.pace.begin(time.Now())
	t.mu.Unlock()
	if wait > 0 {
		time.Sleep(wait) // the calls that come meanwhile join this transaction
	}
	t.mu.Lock()
	calls := t.queue // call is among them
	t.queue = nil
	t.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), t.timeout)
	defer cancel()
	err := t.transact(ctx, calls)
	if err != nil && isFatal(err) {
		t.fatalOnce.Do(func() {
			t.fatalErr = fmt.Errorf("transactional id %s: %w", t.txnID, err)
			close(t.fatal)
		})
	}
	for _, c := range calls {
		c.done, c.err = true, err
	}
	return call.err
}

// GatherLead is how long before a paced transaction may begin Gather
// stops gathering: the time a handler has left to turn its batch into
// its call to Commit, so that the call still joins that transaction. The
// matcher's (bring its index up to date, match) took 2 ms at the median
// and 4 ms at p90 in the latency scenario; with 3 ms, one call in ten
// missed its transaction and waited for the next.
const GatherLead = 6 * time.Millisecond

// Gather extends b with the records of its partition fetched until
// GatherLead before the Transactor's next transaction may begin, when
// its transactions are paced (see TxnInterval); otherwise it returns b
// as it is. A handler that calls it first and then commits what the
// batch yields makes the records that arrive while the transactor waits
// for its next turn part of that transaction, rather than of the one
// after it: under a steady load, a record waits for one turn of the
// pace, not two. The records taken belong to the batch (Batch.More).
func (t *Transactor) Gather(ctx context.Context, b Batch) Batch {
	t.mu.Lock()
	wait := t.pace.until(time.Now()) - GatherLead
	t.mu.Unlock()
	if wait <= 0 {
		return b
	}
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	for {
		more := b.More(ctx)
		if more == nil {
			return b
		}
		b.Records = slices.Concat(b.Records, more) // never into a fetch's array
		b.Fetched = time.Now()
	}
}

func (t *Transactor) transact(ctx context.Context, calls []*txnCall) error {
	var records []*kgo.Record
	offsets := map[string]map[int32]kgo.EpochOffset{}
	for _, c := range calls {
		records = append(records, c.records...)
		for _, r := range c.through {
			parts := offsets[r.Topic]
			if parts == nil {
				parts = map[int32]kgo.EpochOffset{}
				offsets[r.Topic] = parts
			}
			if at, ok := parts[r.Partition]; !ok || at.Offset <= r.Offset {
				parts[r.Partition] = kgo.EpochOffset{Epoch: r.LeaderEpoch, Offset: r.Offset + 1}
			}
		}
	}
	if len(records) == 0 {
		return t.commitOffsets(ctx, offsets)
	}
	if err := t.producer.BeginTransaction(); err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	if err := t.producer.ProduceSync(ctx, records...).FirstErr(); err != nil {
		return t.abort(ctx, fmt.Errorf("produce in transaction: %w", err))
	}
	if len(offsets) > 0 {
		if err := t.sendOffsets(ctx, offsets); err != nil {
			return t.abort(ctx, err)
		}
	}
	err := t.producer.EndTransaction(ctx, kgo.TryCommit)
	if errors.Is(err, kerr.OperationNotAttempted) || errors.Is(err, kerr.TransactionAbortable) {
		return t.abort(ctx, fmt.Errorf("commit transaction: %w", err))
	}
	if err != nil {
		return fmt.Errorf("commit transaction: %w: %w", errUnended, err)
	}
	return nil
}

func (t *Transactor) abort(ctx context.Context, cause error) error {
	if err := t.producer.EndTransaction(ctx, kgo.TryAbort); err != nil {
		return errors.Join(cause, fmt.Errorf("abort transaction: %w: %w", errUnended, err))
	}
	return cause
}

// sendOffsets adds the consumer group's offsets to the open transaction,
// stamped with the member's generation so that a member fenced by a
// rebalance cannot commit.
func (t *Transactor) sendOffsets(ctx context.Context, offsets map[string]map[int32]kgo.EpochOffset) error {
	id, epoch, err := t.producer.ProducerID(ctx)
	if err != nil {
		return fmt.Errorf("producer id: %w", err)
	}
	group := t.consumer.group
	if !t.implicitOffsets {
		add := kmsg.NewPtrAddOffsetsToTxnRequest()
		add.TransactionalID, add.ProducerID, add.ProducerEpoch, add.Group = t.txnID, id, epoch, group
		addResp, err := add.RequestWith(ctx, t.producer)
		if err == nil {
			err = kerr.ErrorForCode(addResp.ErrorCode)
		}
		if err != nil {
			return fmt.Errorf("add offsets of group %s to transaction: %w", group, err)
		}
	}

	// TxnOffsetCommit v6 (KIP-1319) names topics by id, older versions by
	// name; the broker picks, so the request carries both.
	if err := t.loadTopicIDs(ctx, offsets); err != nil {
		return err
	}
	member, generation := t.consumer.client.GroupMetadata()
	req := kmsg.NewPtrTxnOffsetCommitRequest()
	req.TransactionalID, req.Group, req.ProducerID, req.ProducerEpoch = t.txnID, group, id, epoch
	req.Generation, req.MemberID = generation, member
	for topic, parts := range offsets {
		rt := kmsg.NewTxnOffsetCommitRequestTopic()
		rt.Topic, rt.TopicID = topic, t.topicIDs[topic]
		for p, at := range parts {
			rp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
			rp.Partition, rp.Offset, rp.LeaderEpoch = p, at.Offset, at.Epoch
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
	}
	resp, err := req.RequestWith(ctx, t.producer)
	if err != nil {
		return fmt.Errorf("commit offsets in transaction: %w", err)
	}
	var errs []error
	for _, rt := range resp.Topics {
		for _, rp := range rt.Partitions {
			if err := kerr.ErrorForCode(rp.ErrorCode); err != nil {
				errs = append(errs, fmt.Errorf("commit offset of %s/%d in transaction: %w", rt.Topic, rp.Partition, err))
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		if errors.Is(err, kerr.UnknownTopicID) {
			clear(t.topicIDs) // a topic was recreated: look the ids up again
		}
		return err
	}
	return nil
}

// commitOffsets commits the consumer group's offsets outside a
// transaction, with the member's generation.
func (t *Transactor) commitOffsets(ctx context.Context, offsets map[string]map[int32]kgo.EpochOffset) error {
	var errs []error
	t.consumer.client.CommitOffsetsSync(ctx, offsets, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		if err != nil {
			errs = append(errs, err)
			return
		}
		for _, rt := range resp.Topics {
			for _, rp := range rt.Partitions {
				if err := kerr.ErrorForCode(rp.ErrorCode); err != nil {
					errs = append(errs, fmt.Errorf("%s/%d: %w", rt.Topic, rp.Partition, err))
				}
			}
		}
	})
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("commit offsets of group %s: %w", t.consumer.group, err)
	}
	return nil
}

// loadTopicIDs looks up the ids of the topics it does not know yet.
func (t *Transactor) loadTopicIDs(ctx context.Context, offsets map[string]map[int32]kgo.EpochOffset) error {
	var missing []string
	for topic := range offsets {
		if _, ok := t.topicIDs[topic]; !ok {
			missing = append(missing, topic)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	details, err := kadm.NewClient(t.producer).ListTopics(ctx, missing...)
	if err != nil {
		return fmt.Errorf("topic ids: %w", err)
	}
	for _, d := range details {
		if d.Err != nil {
			return fmt.Errorf("topic id of %s: %w", d.Topic, d.Err)
		}
		t.topicIDs[d.Topic] = d.ID
	}
	return nil
}
