package main

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/pkg/dlq"
	"github.com/hookline/hookline/pkg/kafka"
	"github.com/hookline/hookline/pkg/record"
)

// read consumes topic, calling fn for each record, until it has reached
// the end offsets it saw at the start; with follow it then calls caughtUp
// (when not nil) and goes on until ctx ends or fn returns false. Each
// partition starts at its beginning, or with last > 0 at most last records
// before its end.
func read(ctx context.Context, e env, topic string, follow bool, last int64, fn func(*kgo.Record) bool, caughtUp func()) error {
	cfg := e.Kafka
	r := kafka.NewReader(topic).FromLast(last)
	if !follow {
		err := r.ReadToEnd(ctx, cfg, zerolog.Nop(), fn)
		switch {
		case ctx.Err() != nil:
			return nil // interrupted
		case err == nil && caughtUp != nil:
			caughtUp()
		}
		return err
	}
	// Following retries a topic the cluster does not know (a service
	// waits for its topics); a person is told at once instead.
	adm, err := kafka.NewClient(cfg, zerolog.Nop())
	if err != nil {
		return err
	}
	_, err = kafka.EndOffsets(ctx, kadm.NewClient(adm), topic)
	adm.Close()
	if err != nil {
		return err
	}
	if caughtUp != nil {
		r.OnCaughtUp(caughtUp)
	}
	return r.Run(ctx, cfg, zerolog.Nop(), fn)
}

// tailCommand prints delivery-log records in the order of their
// started_at across partitions (each partition alone is in offset order,
// which is not time order across them): the last n matching ones (all
// with -n 0), then with -f each new one as it arrives.
func tailCommand(ctx context.Context, e env, out *printer, args []string) error {
	fs := flag.NewFlagSet("tail", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	follow := fs.Bool("f", false, "keep following")
	tenant := fs.String("tenant", "", "only this tenant")
	sub := fs.String("sub", "", "only this subscription")
	outcome := fs.String("outcome", "", "only delivered, retrying or dead_lettered")
	n := fs.Int("n", 0, "only the last n records (0: all)")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	codecs, err := e.codecs(ctx)
	if err != nil {
		return err
	}
	headers := []string{"STARTED", "DELIVERY", "SUBSCRIPTION", "ATTEMPT", "STATUS", "OUTCOME", "MS", "ERROR"}
	row := func(a record.DeliveryAttempt) []string {
		return []string{a.StartedAt.UTC().Format(time.RFC3339Nano), a.DeliveryID, a.SubscriptionID, itoa(int64(a.Attempt)),
			itoa(int64(a.StatusCode)), a.Outcome, itoa(a.DurationMS), a.Error}
	}
	// Without a filter, the last n of the log are among the last n of each
	// partition: only those are read.
	var last int64
	if *n > 0 && *tenant == "" && *sub == "" && *outcome == "" {
		last = int64(*n)
	}
	var backlog []record.DeliveryAttempt
	trim := func() {
		slices.SortStableFunc(backlog, byStarted)
		if *n > 0 && len(backlog) > *n {
			backlog = append(backlog[:0], backlog[len(backlog)-*n:]...)
		}
	}
	caughtUp := false
	flush := func() {
		trim()
		caughtUp = true
		if out.json {
			for _, a := range backlog {
				_ = out.value(a)
			}
			return
		}
		rows := make([][]string, len(backlog))
		for i, a := range backlog {
			rows[i] = row(a)
		}
		_ = out.table(headers, rows)
	}
	err = read(ctx, e, e.Kafka.Topics.DeliveryLog, *follow, last, func(r *kgo.Record) bool {
		var a record.DeliveryAttempt
		if err := codecs.Attempt.Unmarshal(r.Value, &a); err != nil {
			return true
		}
		if (*tenant != "" && a.Tenant != *tenant) || (*sub != "" && a.SubscriptionID != *sub) || (*outcome != "" && a.Outcome != *outcome) {
			return true
		}
		switch {
		case !caughtUp:
			backlog = append(backlog, a)
			if *n > 0 && len(backlog) >= 2*(*n) {
				trim() // bounded memory however long the log
			}
		case out.json:
			_ = out.value(a)
		default:
			fmt.Fprintln(out.w, strings.Join(row(a), "  "))
		}
		return true
	}, flush)
	return err
}

// byStarted orders attempts by when they started, then by delivery and
// attempt number, so equal times print in a stable order.
func byStarted(a, b record.DeliveryAttempt) int {
	return cmp.Or(a.StartedAt.Compare(b.StartedAt), strings.Compare(a.DeliveryID, b.DeliveryID), cmp.Compare(a.Attempt, b.Attempt))
}

func dlqCommand(ctx context.Context, e env, out *printer, args []string) error {
	if len(args) > 0 && args[0] == "replay" {
		return replayCommand(ctx, e, out, args[1:])
	}
	if len(args) == 0 || args[0] != "list" {
		return fmt.Errorf("%w: dlq list [-sub S] [-n N] | dlq replay -tenant T (-id ID | -sub S [-since RFC3339] [-until RFC3339])", errUsage)
	}
	fs := flag.NewFlagSet("dlq", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	sub := fs.String("sub", "", "only this subscription")
	n := fs.Int("n", 0, "stop after n records (0: all)")
	if err := fs.Parse(args[1:]); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	codecs, err := e.codecs(ctx)
	if err != nil {
		return err
	}
	var rows [][]string
	var all []record.Delivery
	err = read(ctx, e, e.Kafka.Topics.DLQ, false, 0, func(r *kgo.Record) bool {
		var d record.Delivery
		if err := codecs.Delivery.Unmarshal(r.Value, &d); err != nil {
			return true
		}
		if *sub != "" && d.SubscriptionID != *sub {
			return true
		}
		all = append(all, d)
		rows = append(rows, []string{d.ID, d.SubscriptionID, d.EventType, itoa(int64(d.Attempt)), itoa(int64(d.LastStatus)), d.LastError})
		return *n == 0 || len(rows) < *n
	}, nil)
	if err != nil {
		return err
	}
	if out.json {
		return out.value(all)
	}
	return out.table([]string{"DELIVERY", "SUBSCRIPTION", "TYPE", "ATTEMPTS", "STATUS", "ERROR"}, rows)
}

func lagCommand(ctx context.Context, e env, out *printer) error {
	cl, err := kafka.NewClient(e.Kafka, zerolog.Nop())
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	groups, err := adm.ListGroups(ctx)
	if err != nil {
		return err
	}
	var names []string
	for _, g := range groups.Groups() {
		if strings.HasPrefix(g, e.Kafka.Topics.Group("")) { // this installation's
			names = append(names, g)
		}
	}
	sort.Strings(names)
	lags, err := adm.Lag(ctx, names...)
	if err != nil {
		return err
	}
	var rows [][]string
	for _, g := range names {
		l := lags[g]
		if l.Error() != nil {
			rows = append(rows, []string{g, "", "", "error: " + l.Error().Error()})
			continue
		}
		for _, t := range l.Lag.Sorted() {
			rows = append(rows, []string{g, t.Topic, itoa(int64(t.Partition)), itoa(t.Lag)})
		}
	}
	return out.table([]string{"GROUP", "TOPIC", "PARTITION", "LAG"}, rows)
}

func replayCommand(ctx context.Context, e env, out *printer, args []string) error {
	fs := flag.NewFlagSet("replay", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	tenant := fs.String("tenant", "", "the tenant (required)")
	id := fs.String("id", "", "comma-separated delivery ids")
	sub := fs.String("sub", "", "every dead letter of this subscription")
	since := fs.String("since", "", "dead-lettered at or after (RFC 3339)")
	until := fs.String("until", "", "dead-lettered before (RFC 3339)")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	f := dlq.Filter{Tenant: *tenant, DeliveryIDs: splitComma(*id), SubscriptionID: *sub}
	for _, tv := range []struct {
		s   string
		dst *time.Time
	}{{*since, &f.Since}, {*until, &f.Until}} {
		if tv.s == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339, tv.s)
		if err != nil {
			return fmt.Errorf("%w: %q is not RFC 3339", errUsage, tv.s)
		}
		*tv.dst = t
	}
	if f.Tenant == "" || (len(f.DeliveryIDs) == 0 && f.SubscriptionID == "") {
		return fmt.Errorf("%w: dlq replay needs -tenant and -id or -sub", errUsage)
	}
	codecs, err := e.codecs(ctx)
	if err != nil {
		return err
	}
	producer, err := kafka.NewClient(e.Kafka, zerolog.Nop())
	if err != nil {
		return err
	}
	defer producer.Close()
	ids, err := dlq.Replay(ctx, e.Kafka, codecs, producer, f)
	if err != nil {
		return err
	}
	if out.json {
		return out.value(map[string]any{"replayed": ids})
	}
	_, err = fmt.Fprintf(out.w, "replayed %d deliveries\n", len(ids))
	return err
}
