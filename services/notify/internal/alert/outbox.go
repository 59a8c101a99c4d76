package alert

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hookline/hookline/pkg/emailaddr"
)

// Outbox is the queue of notifications in Redis, shared by every notify
// instance:
//
//	<prefix>queue              sorted set: job id -> when it is due (ms)
//	<prefix>job:<id>           hash: kind, tenant, sub, queued, attempts, alert...
//	<prefix>items:<id>         hash: event id -> a digest's given-up delivery
//	<prefix>rcpt:<id>          set: recipients still to be sent to
//	<prefix>res:<id>           hash: recipient -> outcome[:error]
//	<prefix>open:<t>:<sub>     the digest collecting a subscription's items
//	<prefix>event:<t>:<event>  a triggering event already queued (dedupe)
//	<prefix>cap:<t>:<addr>:<h> emails to a recipient in one hour
//
// <t> is the tenant, query-escaped so that it holds no colon. Every change
// is one script, so a crash leaves no half-made job. A claimed job stays in
// the queue with its due time pushed a lease ahead: an instance that dies
// while sending leaves it to another one after the lease.
type Outbox struct {
	rdb    redis.UniversalClient
	prefix string
	// DedupeTTL is how long a triggering event is remembered: longer than
	// hookline.events keeps it (7 days), so a replayed topic is not
	// emailed twice.
	DedupeTTL time.Duration
}

// NewOutbox returns the outbox under prefix (wire.Keys.Notify).
func NewOutbox(rdb redis.UniversalClient, prefix string) *Outbox {
	return &Outbox{rdb: rdb, prefix: prefix, DedupeTTL: 8 * 24 * time.Hour}
}

func (o *Outbox) key(parts ...string) string { return o.prefix + strings.Join(parts, ":") }

func (o *Outbox) queue() string { return o.key("queue") }

func tenantKey(tenant string) string { return url.QueryEscape(tenant) }

// enqueueAlert queues a job unless its event was queued before.
var enqueueAlert = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[1])
if redis.call('EXISTS', KEYS[2]) == 0 then
  redis.call('HSET', KEYS[2], unpack(ARGV, 4))
  redis.call('ZADD', KEYS[3], ARGV[3], ARGV[2])
end
return 1
`)

// EnqueueAlert queues j (an Alert job) due now; false when its triggering
// event was queued before.
func (o *Outbox) EnqueueAlert(ctx context.Context, j *Job, now time.Time) (bool, error) {
	body, err := json.Marshal(j.Alert)
	if err != nil {
		return false, err
	}
	keys := []string{o.key("event", tenantKey(j.Tenant), j.Alert.Trigger), o.key("job", j.ID), o.queue()}
	args := append([]any{o.DedupeTTL.Milliseconds(), j.ID, now.UnixMilli()}, jobFields(j, now)...)
	args = append(args, "alert", string(body))
	n, err := enqueueAlert.Run(ctx, o.rdb, keys, args...).Int()
	if err != nil {
		return false, fmt.Errorf("queue notification %s: %w", j.ID, err)
	}
	return n == 1, nil
}

func jobFields(j *Job, now time.Time) []any {
	return []any{"kind", j.Kind, "tenant", j.Tenant, "sub", j.SubscriptionID, "queued", now.UnixMilli(), "attempts", 0}
}

// enqueueItem adds an item to the subscription's open digest, opening one
// (due when the window ends) if there is none.
var enqueueItem = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local job = redis.call('GET', KEYS[2])
if not job then
  job = ARGV[2]
  redis.call('SET', KEYS[2], job, 'PX', ARGV[4])
  redis.call('HSET', ARGV[5] .. 'job:' .. job, 'open', KEYS[2], unpack(ARGV, 8))
  redis.call('ZADD', KEYS[3], ARGV[3], job)
end
redis.call('HSET', ARGV[5] .. 'items:' .. job, ARGV[6], ARGV[7])
redis.call('SET', KEYS[1], job, 'PX', ARGV[1])
return 1
`)

// EnqueueItem adds a given-up delivery to its subscription's digest. The
// first item of a window opens a digest, named j.ID and due window later;
// the next ones join it. False when the item's event was queued before.
func (o *Outbox) EnqueueItem(ctx context.Context, j *Job, it Item, window time.Duration, now time.Time) (bool, error) {
	body, err := json.Marshal(it)
	if err != nil {
		return false, err
	}
	t := tenantKey(j.Tenant)
	keys := []string{o.key("event", t, it.Trigger), o.key("open", t, j.SubscriptionID), o.queue()}
	args := append([]any{o.DedupeTTL.Milliseconds(), j.ID, now.Add(window).UnixMilli(), max(window.Milliseconds(), 1),
		o.prefix, it.Trigger, string(body)}, jobFields(j, now)...)
	n, err := enqueueItem.Run(ctx, o.rdb, keys, args...).Int()
	if err != nil {
		return false, fmt.Errorf("queue given-up delivery %s: %w", it.DeliveryID, err)
	}
	return n == 1, nil
}

// claim takes due jobs, pushing each a lease ahead, and closes the digests
// among them: later items open a new one.
var claim = redis.NewScript(`
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[3])
for _, id in ipairs(ids) do
  redis.call('ZADD', KEYS[1], tonumber(ARGV[1]) + tonumber(ARGV[2]), id)
  local open = redis.call('HGET', ARGV[4] .. 'job:' .. id, 'open')
  if open and redis.call('GET', open) == id then redis.call('DEL', open) end
end
return ids
`)

// Claim takes up to limit jobs due at now for lease.
func (o *Outbox) Claim(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]string, error) {
	ids, err := claim.Run(ctx, o.rdb, []string{o.queue()}, now.UnixMilli(), lease.Milliseconds(), limit, o.prefix).StringSlice()
	if err != nil {
		return nil, fmt.Errorf("claim notifications: %w", err)
	}
	return ids, nil
}

// Load reads a job; nil when it is gone (finished by another instance).
func (o *Outbox) Load(ctx context.Context, id string) (*Job, error) {
	pipe := o.rdb.Pipeline()
	fields := pipe.HGetAll(ctx, o.key("job", id))
	items := pipe.HGetAll(ctx, o.key("items", id))
	rcpt := pipe.SMembers(ctx, o.key("rcpt", id))
	res := pipe.HGetAll(ctx, o.key("res", id))
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("load notification %s: %w", id, err)
	}
	f := fields.Val()
	if len(f) == 0 || f["kind"] == "" {
		return nil, nil
	}
	j := &Job{ID: id, Kind: f["kind"], Tenant: f["tenant"], SubscriptionID: f["sub"], LastError: f["last_error"],
		Admitted: f["admitted"] != "", Pending: rcpt.Val(), Results: map[string]Result{}}
	queued, _ := strconv.ParseInt(f["queued"], 10, 64)
	j.QueuedAt = time.UnixMilli(queued)
	j.Attempts, _ = strconv.Atoi(f["attempts"])
	if raw := f["alert"]; raw != "" {
		j.Alert = new(Alert)
		if err := json.Unmarshal([]byte(raw), j.Alert); err != nil {
			return nil, fmt.Errorf("notification %s: %w", id, err)
		}
	}
	for _, raw := range items.Val() {
		var it Item
		if err := json.Unmarshal([]byte(raw), &it); err != nil {
			return nil, fmt.Errorf("notification %s item: %w", id, err)
		}
		j.Items = append(j.Items, it)
	}
	slices.SortFunc(j.Items, func(a, b Item) int { return a.At.Compare(b.At) })
	slices.Sort(j.Pending)
	for addr, v := range res.Val() {
		outcome, msg, _ := strings.Cut(v, ":")
		j.Results[addr] = Result{Outcome: outcome, Error: msg}
	}
	return j, nil
}

// admit settles a job's recipients once: each one under the hourly cap is
// pending, the others are suppressed.
var admit = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
if redis.call('HSETNX', KEYS[1], 'admitted', ARGV[1]) == 0 then return -2 end
local cap, suppressed = tonumber(ARGV[2]), 0
for i = 5, #ARGV, 2 do
  local k = ARGV[3] .. ARGV[i + 1] .. ':' .. ARGV[4]
  local n = redis.call('INCR', k)
  if n == 1 then redis.call('EXPIRE', k, 7200) end
  if n <= cap then
    redis.call('SADD', KEYS[2], ARGV[i])
  else
    redis.call('HSET', KEYS[3], ARGV[i], 'suppressed:over the hourly cap of ' .. ARGV[2] .. ' emails')
    suppressed = suppressed + 1
  end
end
return suppressed
`)

// Admit settles j's recipients: those over the hourly cap of their
// tenant's emails to them are suppressed. It counts only once per job, so
// a retried job is not counted again. j is reloaded afterwards.
func (o *Outbox) Admit(ctx context.Context, j *Job, recipients []string, hourlyCap int, now time.Time) (*Job, int, error) {
	args := []any{now.UnixMilli(), hourlyCap, o.key("cap", tenantKey(j.Tenant)) + ":", now.UTC().Format("2006010215")}
	for _, r := range recipients {
		args = append(args, r, emailaddr.Normal(r))
	}
	keys := []string{o.key("job", j.ID), o.key("rcpt", j.ID), o.key("res", j.ID)}
	n, err := admit.Run(ctx, o.rdb, keys, args...).Int()
	if err != nil {
		return nil, 0, fmt.Errorf("admit notification %s: %w", j.ID, err)
	}
	again, err := o.Load(ctx, j.ID)
	return again, max(n, 0), err
}

// settle records the recipients done and when the job is next due.
var settle = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
for i = 4, #ARGV, 2 do
  redis.call('SREM', KEYS[2], ARGV[i])
  redis.call('HSET', KEYS[3], ARGV[i], ARGV[i + 1])
end
redis.call('HINCRBY', KEYS[1], 'attempts', 1)
if ARGV[3] ~= '' then redis.call('HSET', KEYS[1], 'last_error', ARGV[3]) end
redis.call('ZADD', KEYS[4], ARGV[2], ARGV[1])
return 1
`)

// Settle records the results of one round of j (the recipients done) and
// makes it due again at next. False when the job is gone: another instance
// finished it after this one's lease ran out.
func (o *Outbox) Settle(ctx context.Context, j *Job, done map[string]Result, next time.Time, lastErr string) (bool, error) {
	args := []any{j.ID, next.UnixMilli(), lastErr}
	for addr, r := range done {
		v := r.Outcome
		if r.Error != "" {
			v += ":" + r.Error
		}
		args = append(args, addr, v)
	}
	keys := []string{o.key("job", j.ID), o.key("rcpt", j.ID), o.key("res", j.ID), o.queue()}
	n, err := settle.Run(ctx, o.rdb, keys, args...).Int()
	if err != nil {
		return false, fmt.Errorf("settle notification %s: %w", j.ID, err)
	}
	return n == 1, nil
}

// Finish forgets a job whose every recipient is done and recorded. The
// event marks stay, so its events are not queued again.
func (o *Outbox) Finish(ctx context.Context, id string) error {
	pipe := o.rdb.TxPipeline()
	pipe.ZRem(ctx, o.queue(), id)
	pipe.Del(ctx, o.key("job", id), o.key("items", id), o.key("rcpt", id), o.key("res", id))
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("finish notification %s: %w", id, err)
	}
	return nil
}

// Len is the number of queued jobs.
func (o *Outbox) Len(ctx context.Context) (int64, error) {
	return o.rdb.ZCard(ctx, o.queue()).Result()
}
