package kafka

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Reader reads topics from their start (or the last few records of each
// partition) without a consumer group, and knows where their ends were
// when it began. It is the one way Hookline reads a topic to its end:
// ReadToEnd stops there (a replay, hookctl, a test reading back what it
// wrote); Run goes on following the topics, and tells whoever waits when
// it has caught up (Ready, WaitReady) or read a given offset (WaitFor,
// Sync): the in-memory views of compacted topics and indexes are built on
// it.
//
// It reads committed records only and keeps the transaction markers, so a
// partition whose last offset is a commit or abort marker still counts as
// read to its end. The records handed to fn are data records in each
// partition's offset order; a partition's progress moves past a record
// only once fn returned, so whoever WaitFor's a record finds fn's work on
// it done.
type Reader struct {
	topics     []string
	last       int64
	onCaughtUp func()

	mu       sync.RWMutex
	next     map[partition]int64 // next offset to read
	target   map[partition]int64 // end offsets when reading began
	ready    bool
	progress chan struct{} // closed and replaced whenever next advances
	adm      *kadm.Client  // Run's client, for Sync; nil when not running
}

type partition struct {
	topic string
	p     int32
}

// NewReader returns a reader of topics; Run or ReadToEnd reads them,
// once.
func NewReader(topics ...string) *Reader {
	return &Reader{topics: topics, next: map[partition]int64{}, progress: make(chan struct{})}
}

// FromLast starts each partition at most n records before its end
// instead of at its start (n > 0). Set it before reading.
func (r *Reader) FromLast(n int64) *Reader { r.last = n; return r }

// OnCaughtUp has fn called once, on the reading goroutine and between
// records, when every partition has been read up to the end it had when
// reading began. Set it before reading.
func (r *Reader) OnCaughtUp(fn func()) *Reader { r.onCaughtUp = fn; return r }

// ErrNotReady is returned by Ready until the reader has caught up, and by
// Sync when it is not running.
var ErrNotReady = errors.New("still catching up with the topic")

// Run reads the topics and follows them until ctx ends or fn returns
// false; then it returns nil. Listing the end offsets at the start is
// retried until the cluster answers (a service may start before its
// topics are served), and fetch errors are logged and retried, so only a
// client that cannot be built fails it.
func (r *Reader) Run(ctx context.Context, cfg Config, log zerolog.Logger, fn func(*kgo.Record) bool, extra ...kgo.Opt) error {
	return r.read(ctx, cfg, log, fn, true, extra)
}

// ReadToEnd reads the topics up to the end each partition had when it
// began, and returns: nil once there, or when fn returned false; ctx's
// error when ctx ends first; the cluster's error when listing the end
// offsets or a fetch fails.
func (r *Reader) ReadToEnd(ctx context.Context, cfg Config, log zerolog.Logger, fn func(*kgo.Record) bool) error {
	return r.read(ctx, cfg, log, fn, false, nil)
}

func (r *Reader) read(ctx context.Context, cfg Config, log zerolog.Logger, fn func(*kgo.Record) bool, follow bool, extra []kgo.Opt) error {
	// The consumer's options need the offsets: a short-lived client lists
	// them first.
	adm, err := NewClient(cfg, log)
	if err != nil {
		return err
	}
	starts, ends, err := r.bounds(ctx, kadm.NewClient(adm), log, follow)
	adm.Close()
	if err != nil {
		if follow {
			return nil // ctx ended
		}
		return err
	}
	from := map[string]map[int32]kgo.Offset{}
	target, next := map[partition]int64{}, map[partition]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		tp := partition{o.Topic, o.Partition}
		target[tp] = o.Offset
		// Offsets before the log start are gone (retention): a partition
		// whose records have all expired is read to its end already.
		first := int64(0)
		if s, ok := starts.Lookup(o.Topic, o.Partition); ok {
			first = s.Offset
		}
		if r.last > 0 {
			first = max(first, o.Offset-r.last)
		}
		next[tp] = first
		if from[o.Topic] == nil {
			from[o.Topic] = map[int32]kgo.Offset{}
		}
		from[o.Topic][o.Partition] = kgo.NewOffset().At(first)
	})
	opts := []kgo.Opt{
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.KeepControlRecords(),
	}
	if r.last > 0 || !follow {
		opts = append(opts, kgo.ConsumePartitions(from))
	} else {
		// From the start, and partitions added later are followed too.
		opts = append(opts, kgo.ConsumeTopics(r.topics...))
	}
	cl, err := NewClient(cfg, log, append(opts, extra...)...)
	if err != nil {
		return err
	}
	defer cl.Close()

	r.mu.Lock()
	r.target, r.next, r.adm = target, next, kadm.NewClient(cl)
	caughtUp := r.checkReadyLocked()
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		r.adm = nil
		r.mu.Unlock()
	}()
	for {
		if caughtUp && r.onCaughtUp != nil {
			r.onCaughtUp()
		}
		if !follow && r.caughtUp() {
			return nil
		}
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil || fetches.IsClientClosed() {
			if follow {
				return nil
			}
			return ctx.Err()
		}
		var fetchErr error
		fetches.EachError(func(t string, p int32, err error) {
			if follow {
				log.Warn().Err(err).Str("topic", t).Int32("partition", p).Msg("fetch")
			} else if fetchErr == nil {
				fetchErr = fmt.Errorf("read %s partition %d: %w", t, p, err)
			}
		})
		if fetchErr != nil {
			return fetchErr
		}
		stop := false
		fetches.EachRecord(func(rec *kgo.Record) {
			if stop {
				return
			}
			if !rec.Attrs.IsControl() && !fn(rec) {
				stop = true
			}
			r.mu.Lock()
			r.next[partition{rec.Topic, rec.Partition}] = rec.Offset + 1
			r.mu.Unlock()
		})
		r.mu.Lock()
		caughtUp = r.checkReadyLocked()
		close(r.progress)
		r.progress = make(chan struct{})
		r.mu.Unlock()
		if stop {
			return nil
		}
	}
}

// bounds lists the start and end offsets of the topics' partitions. When
// following, it retries until the cluster answers or ctx ends: a service
// may start before its topics are served, and a topic created a moment
// ago may be unknown to the broker that answers for a short while.
func (r *Reader) bounds(ctx context.Context, adm *kadm.Client, log zerolog.Logger, follow bool) (starts, ends kadm.ListedOffsets, err error) {
	for wait := 100 * time.Millisecond; ; wait = min(2*wait, 2*time.Second) {
		if ends, err = EndOffsets(ctx, adm, r.topics...); err == nil {
			if starts, err = adm.ListStartOffsets(ctx, r.topics...); err == nil {
				err = starts.Error()
			}
		}
		if err == nil || !follow || ctx.Err() != nil {
			return starts, ends, err
		}
		log.Warn().Err(err).Strs("topics", r.topics).Dur("retry_in", wait).Msg("listing offsets")
		select {
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		case <-time.After(wait):
		}
	}
}

// checkReadyLocked marks the reader ready once every partition is past its
// target, and reports whether this call did.
func (r *Reader) checkReadyLocked() bool {
	if r.ready || r.target == nil {
		return false
	}
	for tp, end := range r.target {
		if r.next[tp] < end {
			return false
		}
	}
	r.ready = true
	return true
}

func (r *Reader) caughtUp() bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.ready
}

// Ready reports whether the reader has caught up: ErrNotReady until then.
func (r *Reader) Ready() error {
	if !r.caughtUp() {
		return ErrNotReady
	}
	return nil
}

// WaitReady blocks until the reader has caught up or ctx ends.
func (r *Reader) WaitReady(ctx context.Context) error {
	for {
		r.mu.RLock()
		ready, progress := r.ready, r.progress
		r.mu.RUnlock()
		if ready {
			return nil
		}
		select {
		case <-progress:
		case <-time.After(50 * time.Millisecond): // an empty topic makes no progress
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// WaitFor blocks until the record at offset of topic's partition p has
// been read (and fn is done with it), so a writer can read its own write.
func (r *Reader) WaitFor(ctx context.Context, topic string, p int32, offset int64) error {
	for {
		r.mu.RLock()
		done, progress := r.next[partition{topic, p}] > offset, r.progress
		r.mu.RUnlock()
		if done {
			return nil
		}
		select {
		case <-progress:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Sync blocks until the reader has read everything written to its topics
// before the call. A reader of a view that learns of a key from elsewhere
// (an event naming a subscription created a moment ago) and does not find
// it calls Sync before deciding that the key is gone: the view follows its
// topics on its own and may be behind, seconds behind on a loaded
// machine. It fails when the reader is not running or the end offsets
// cannot be listed.
func (r *Reader) Sync(ctx context.Context) error {
	r.mu.RLock()
	adm := r.adm
	r.mu.RUnlock()
	if adm == nil {
		return ErrNotReady
	}
	ends, err := EndOffsets(ctx, adm, r.topics...)
	if err != nil {
		return err
	}
	var errs []error
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			errs = append(errs, r.WaitFor(ctx, o.Topic, o.Partition, o.Offset-1))
		}
	})
	return errors.Join(errs...)
}

// EndOffsets lists the end offsets (high watermarks) of every partition of
// topics, failing on the first topic or partition the cluster reports an
// error for.
func EndOffsets(ctx context.Context, adm *kadm.Client, topics ...string) (kadm.ListedOffsets, error) {
	ends, err := adm.ListEndOffsets(ctx, topics...)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("end offsets of %v: %w", topics, err)
	}
	return ends, nil
}
