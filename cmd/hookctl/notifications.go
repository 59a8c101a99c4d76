package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/pkg/record"
)

// notificationsCommand lists the most recent alert emails notify handled,
// from hookline.notifications (kept 30 days): one row per recipient,
// oldest first.
func notificationsCommand(ctx context.Context, e env, out *printer, args []string) error {
	fs := flag.NewFlagSet("notifications", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	tenant := fs.String("tenant", "", "only this tenant")
	sub := fs.String("sub", "", "only this subscription")
	kind := fs.String("kind", "", "only failing, critical, disabled, recovered or exhausted")
	n := fs.Int("n", 20, "the n most recent notifications (0: all)")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if *n < 0 {
		return fmt.Errorf("%w: -n must be 0 or more", errUsage)
	}
	codecs, err := e.codecs(ctx)
	if err != nil {
		return err
	}
	var all []record.Notification
	err = read(ctx, e, e.Kafka.Topics.Notifications, false, 0, func(r *kgo.Record) bool {
		var nt record.Notification
		if err := codecs.Notification.Unmarshal(r.Value, &nt); err != nil {
			return true
		}
		if (*tenant == "" || nt.Tenant == *tenant) && (*sub == "" || nt.SubscriptionID == *sub) && (*kind == "" || nt.Kind == *kind) {
			all = append(all, nt)
		}
		return true
	}, nil)
	if err != nil {
		return err
	}
	// Records of different subscriptions sit in different partitions.
	slices.SortStableFunc(all, func(a, b record.Notification) int { return a.FinishedAt.Compare(b.FinishedAt) })
	if *n > 0 && len(all) > *n {
		all = all[len(all)-*n:]
	}
	if out.json {
		return out.value(all)
	}
	var rows [][]string
	for _, nt := range all {
		row := func(to, outcome, detail string) []string {
			return []string{nt.FinishedAt.UTC().Format(time.RFC3339), nt.Kind, nt.SubscriptionID, to, outcome, detail, nt.Subject}
		}
		if len(nt.Recipients) == 0 {
			rows = append(rows, row("(nobody)", "", "no alert_emails and no default recipient"))
		}
		for _, r := range nt.Recipients {
			rows = append(rows, row(r.Address, r.Outcome, r.Error))
		}
	}
	return out.table([]string{"FINISHED", "KIND", "SUBSCRIPTION", "TO", "OUTCOME", "ERROR", "SUBJECT"}, rows)
}
