// Package claim holds ingest's claims on the deliveries it attempts in
// immediate mode (POST /v1/events?mode=immediate), which the sender
// honours so that the pipeline's copy of such a delivery is not sent
// again. A claim is taken (SET NX) before the event is written to Kafka,
// so no copy can reach a sender before it; it is pending while ingest's
// attempt is under way, then resolved: delivered (the sender drops its
// copy), or failed with what the attempt got (the sender moves its copy on
// as attempt 1, to a retry tier or the DLQ, without sending it). A pending
// claim expires after its TTL: ingest died mid-attempt, and the pipeline
// sends the delivery (at least once, never lost).
package claim

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hookline/hookline/pkg/deliver"
	"github.com/hookline/hookline/pkg/redisbatch"
)

// State is where a claim stands.
type State int

// Claim states.
const (
	None      State = iota // no claim: the pipeline sends the delivery
	Pending                // ingest's attempt is under way
	Delivered              // ingest delivered it
	Failed                 // ingest's attempt, attempt 1, failed
)

// Stored values of the resolved claims; a failed one is failedPrefix and
// the Failure as JSON.
const (
	pendingValue   = "p"
	deliveredValue = "d"
	failedPrefix   = "f"
)

// Failure is what a failed immediate attempt got: what deliver.Decide
// needs to move the pipeline's copy on exactly as ingest decided it.
type Failure struct {
	URL        string        `json:"url"`
	Class      deliver.Class `json:"class"`
	Status     int           `json:"status"`
	Error      string        `json:"error"`
	RetryAfter time.Duration `json:"retry_after"`
	Duration   time.Duration `json:"duration"`
	Started    time.Time     `json:"started"`
}

// FailureOf is the Failure of an attempt started at started.
func FailureOf(res deliver.Result, started time.Time) Failure {
	return Failure{URL: res.URL, Class: res.Class, Status: res.Status, Error: res.Err,
		RetryAfter: res.RetryAfter, Duration: res.Duration, Started: started}
}

// Result is the deliver.Result the Failure came from, as far as
// deliver.Decide reads it.
func (f Failure) Result() deliver.Result {
	return deliver.Result{URL: f.URL, Class: f.Class, Status: f.Status, Err: f.Error,
		RetryAfter: f.RetryAfter, Duration: f.Duration}
}

// Claim is one claim as read.
type Claim struct {
	State   State
	Failure Failure // when Failed
}

// Store keeps claims under a key prefix (wire.Keys.Claims), by delivery id.
type Store struct {
	rdb    redis.UniversalClient
	batch  *redisbatch.Batcher
	prefix string
	// Resolved is how long a resolved claim is kept: long enough for the
	// pipeline's copy to reach a sender however far behind it runs.
	Resolved time.Duration
}

// DefaultResolved is how long a resolved claim is kept: what the sender's
// delivered marks are kept by default.
const DefaultResolved = 7 * 24 * time.Hour

// New returns a store of claims under prefix.
func New(rdb redis.UniversalClient, prefix string) *Store {
	return &Store{rdb: rdb, batch: redisbatch.New(rdb, 0), prefix: prefix, Resolved: DefaultResolved}
}

// Take claims ids for ttl, pending, in one round trip, and reports which
// this call took (false: claimed before).
func (s *Store) Take(ctx context.Context, ids []string, ttl time.Duration) ([]bool, error) {
	cmds := make([]*redis.BoolCmd, len(ids))
	err := s.batch.Do(ctx, func(p redis.Pipeliner) {
		for i, id := range ids {
			cmds[i] = p.SetNX(ctx, s.prefix+id, pendingValue, ttl)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("redis take claims: %w", err)
	}
	out := make([]bool, len(ids))
	for i, c := range cmds {
		out[i] = c.Val()
	}
	return out, nil
}

// Release drops claims taken for an event that could not be written.
func (s *Store) Release(ctx context.Context, ids ...string) error {
	if len(ids) == 0 {
		return nil
	}
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = s.prefix + id
	}
	if err := s.rdb.Del(ctx, keys...).Err(); err != nil {
		return fmt.Errorf("redis release claims: %w", err)
	}
	return nil
}

// Deliver resolves a claim as delivered. It replaces the pending value in
// place (never deleting it), so that a sender never finds the delivery
// unclaimed and not yet delivered.
func (s *Store) Deliver(ctx context.Context, id string) error {
	if err := s.rdb.Set(ctx, s.prefix+id, deliveredValue, s.Resolved).Err(); err != nil {
		return fmt.Errorf("redis resolve claim %s: %w", id, err)
	}
	return nil
}

// Fail resolves a claim as failed with what the attempt got.
func (s *Store) Fail(ctx context.Context, id string, f Failure) error {
	b, err := json.Marshal(f)
	if err != nil {
		return err
	}
	if err := s.rdb.Set(ctx, s.prefix+id, failedPrefix+string(b), s.Resolved).Err(); err != nil {
		return fmt.Errorf("redis resolve claim %s: %w", id, err)
	}
	return nil
}

// Look reads the claims of ids in one round trip. A value it cannot read
// counts as None: the pipeline sends the delivery (at least once).
func (s *Store) Look(ctx context.Context, ids []string) ([]Claim, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = s.prefix + id
	}
	var get *redis.SliceCmd
	if err := s.batch.Do(ctx, func(p redis.Pipeliner) { get = p.MGet(ctx, keys...) }); err != nil {
		return nil, fmt.Errorf("redis look up claims: %w", err)
	}
	out := make([]Claim, len(ids))
	for i, v := range get.Val() {
		str, _ := v.(string)
		switch {
		case str == pendingValue:
			out[i].State = Pending
		case str == deliveredValue:
			out[i].State = Delivered
		case len(str) > 0 && str[:1] == failedPrefix:
			if json.Unmarshal([]byte(str[1:]), &out[i].Failure) == nil {
				out[i].State = Failed
			}
		}
	}
	return out, nil
}
