package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// The delivery history through the ingest API: `logs` lists and shows
// attempts, `redeliver` runs deliveries again.

// attempt is what hookctl shows of an attempt of the history API.
type attempt struct {
	DeliveryID string    `json:"delivery_id"`
	Attempt    int       `json:"attempt"`
	StartedAt  time.Time `json:"started_at"`
	DurationMS int64     `json:"duration_ms"`
	URL        string    `json:"url"`
	Outcome    string    `json:"outcome"`
	Error      string    `json:"error"`
	Replay     bool      `json:"replay"`
	Response   *struct {
		Status int `json:"status"`
	} `json:"response"`
}

// pageSize is the most a history page holds (logstore.MaxLimit).
const pageSize = 250

// historyTime reads a -since or -until value: an RFC 3339 time, or a
// duration meaning that long ago (2h, 30m).
func historyTime(v string, now time.Time) (string, error) {
	if v == "" {
		return "", nil
	}
	if d, err := time.ParseDuration(v); err == nil && d > 0 {
		return now.Add(-d).UTC().Format(time.RFC3339Nano), nil
	}
	if _, err := time.Parse(time.RFC3339Nano, v); err != nil {
		return "", fmt.Errorf("%w: %q is neither an RFC 3339 time nor a duration such as 2h", errUsage, v)
	}
	return v, nil
}

// historyWindow reads -since and -until (see historyTime) into the
// values to send, leaving out those not given.
func historyWindow(since, until string) (map[string]string, error) {
	now := time.Now()
	out := map[string]string{}
	for name, v := range map[string]string{"since": since, "until": until} {
		t, err := historyTime(v, now)
		if err != nil {
			return nil, err
		}
		if t != "" {
			out[name] = t
		}
	}
	return out, nil
}

func logsCommand(ctx context.Context, e env, out *printer, args []string) error {
	if len(args) >= 1 && args[0] == "show" {
		if len(args) != 2 {
			return fmt.Errorf("%w: logs show <delivery-id>", errUsage)
		}
		var v json.RawMessage
		if err := call(ctx, e, http.MethodGet, "/v1/deliveries/"+url.PathEscape(args[1]), nil, &v); err != nil {
			return err
		}
		return out.value(v)
	}
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		return fmt.Errorf("%w: logs <subscription-id> [-status S] [-since T] [-until T] [-n N], or logs show <delivery-id>", errUsage)
	}
	sub := args[0]
	fs := flag.NewFlagSet("logs", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	status := fs.String("status", "", "delivered, retrying or failed")
	since := fs.String("since", "", "started at or after: RFC 3339, or a duration ago (2h)")
	until := fs.String("until", "", "started before: RFC 3339, or a duration ago")
	n := fs.Int("n", 50, "how many, newest first")
	if err := fs.Parse(args[1:]); err != nil || fs.NArg() > 0 || *n < 1 {
		return fmt.Errorf("%w: logs <subscription-id> [-status S] [-since T] [-until T] [-n N]", errUsage)
	}
	window, err := historyWindow(*since, *until)
	if err != nil {
		return err
	}
	q := url.Values{}
	for name, v := range window {
		q.Set(name, v)
	}
	if *status != "" {
		q.Set("status", *status)
	}
	var attempts []json.RawMessage
	for len(attempts) < *n {
		q.Set("limit", strconv.Itoa(min(*n-len(attempts), pageSize)))
		var p struct {
			Data       []json.RawMessage `json:"data"`
			NextCursor *string           `json:"next_cursor"`
		}
		if err := call(ctx, e, http.MethodGet, "/v1/subscriptions/"+url.PathEscape(sub)+"/attempts?"+q.Encode(), nil, &p); err != nil {
			return err
		}
		attempts = append(attempts, p.Data...)
		if p.NextCursor == nil {
			break
		}
		q.Set("cursor", *p.NextCursor)
	}
	if out.json {
		return out.value(attempts)
	}
	rows := [][]string{}
	for _, raw := range attempts {
		var a attempt
		_ = json.Unmarshal(raw, &a)
		status := "-"
		if a.Response != nil {
			status = strconv.Itoa(a.Response.Status)
		}
		outcome := a.Outcome
		if a.Replay {
			outcome += " (replay)"
		}
		rows = append(rows, []string{a.StartedAt.Local().Format("2006-01-02 15:04:05.000"), a.DeliveryID, strconv.Itoa(a.Attempt),
			outcome, status, strconv.FormatInt(a.DurationMS, 10) + "ms", a.Error})
	}
	return out.table([]string{"STARTED", "DELIVERY", "ATTEMPT", "OUTCOME", "STATUS", "DURATION", "ERROR"}, rows)
}

func redeliverCommand(ctx context.Context, e env, out *printer, args []string) error {
	const use = "redeliver <delivery-id> | redeliver -event E -sub S [-new] | redeliver -recover S -since T [-until T]"
	fs := flag.NewFlagSet("redeliver", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	event := fs.String("event", "", "an event to send to -sub")
	sub := fs.String("sub", "", "the subscription to send -event to")
	fresh := fs.Bool("new", false, "with -event: send it even if it was sent to -sub before")
	recoverSub := fs.String("recover", "", "a subscription whose failed deliveries of [-since, -until) are sent again")
	since := fs.String("since", "", "with -recover: created at or after (RFC 3339, or a duration ago)")
	until := fs.String("until", "", "with -recover: created before (now when empty)")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %s", errUsage, use)
	}
	var answer json.RawMessage
	switch {
	case *event != "" && *sub != "" && *recoverSub == "" && fs.NArg() == 0:
		body := map[string]any{"subscription_id": *sub, "new_attempt": *fresh}
		if err := call(ctx, e, http.MethodPost, "/v1/events/"+url.PathEscape(*event)+"/redeliver", body, &answer); err != nil {
			return err
		}
	case *recoverSub != "" && *since != "" && *event == "" && fs.NArg() == 0:
		body, err := historyWindow(*since, *until)
		if err != nil {
			return err
		}
		if err := call(ctx, e, http.MethodPost, "/v1/subscriptions/"+url.PathEscape(*recoverSub)+"/recover", body, &answer); err != nil {
			return err
		}
	case fs.NArg() == 1 && *event == "" && *sub == "" && *recoverSub == "":
		if err := call(ctx, e, http.MethodPost, "/v1/deliveries/"+url.PathEscape(fs.Arg(0))+"/redeliver", nil, &answer); err != nil {
			return err
		}
	default:
		return fmt.Errorf("%w: %s", errUsage, use)
	}
	return out.value(answer)
}

// overview is what hookctl shows of GET /v1/stats.
type overview struct {
	counts
	Since         time.Time `json:"since"`
	Until         time.Time `json:"until"`
	Subscriptions []struct {
		SubscriptionID string `json:"subscription_id"`
		Name           string `json:"name"`
		URL            string `json:"url"`
		counts
	} `json:"subscriptions"`
	SubscriptionsTotal int `json:"subscriptions_total"`
}

type counts struct {
	Attempts  int64 `json:"attempts"`
	Delivered int64 `json:"delivered"`
	Retrying  int64 `json:"retrying"`
	Failed    int64 `json:"failed"`
	LatencyMS struct {
		P50 int64 `json:"p50"`
		P95 int64 `json:"p95"`
		P99 int64 `json:"p99"`
	} `json:"latency_ms"`
}

func (c counts) row(first ...string) []string {
	n := func(v int64) string { return strconv.FormatInt(v, 10) }
	return append(first, n(c.Attempts), n(c.Delivered), n(c.Retrying), n(c.Failed),
		fmt.Sprintf("%d/%d/%dms", c.LatencyMS.P50, c.LatencyMS.P95, c.LatencyMS.P99))
}

// statsCommand is the tenant's attempts of a window counted by outcome,
// in all and per endpoint, failing first (GET /v1/stats).
func statsCommand(ctx context.Context, e env, out *printer, args []string) error {
	const use = "stats [-since T] [-until T] [-n N]"
	fs := flag.NewFlagSet("stats", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	since := fs.String("since", "", "attempts started at or after: RFC 3339, or a duration ago (default 1h)")
	until := fs.String("until", "", "attempts started before (now when empty)")
	n := fs.Int("n", 20, "how many endpoints, failing first")
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 || *n < 1 || *n > pageSize {
		return fmt.Errorf("%w: %s (N: 1 to %d)", errUsage, use, pageSize)
	}
	window, err := historyWindow(*since, *until)
	if err != nil {
		return err
	}
	q := url.Values{"limit": {strconv.Itoa(*n)}}
	for name, v := range window {
		q.Set(name, v)
	}
	var raw json.RawMessage
	if err := call(ctx, e, http.MethodGet, "/v1/stats?"+q.Encode(), nil, &raw); err != nil {
		return err
	}
	if out.json {
		return out.value(raw)
	}
	var ov overview
	if err := json.Unmarshal(raw, &ov); err != nil {
		return fmt.Errorf("GET /v1/stats: %w", err)
	}
	headers := []string{"SUBSCRIPTION", "NAME", "URL", "ATTEMPTS", "DELIVERED", "RETRYING", "FAILED", "P50/P95/P99"}
	rows := [][]string{ov.counts.row("all", fmt.Sprintf("%d endpoints", ov.SubscriptionsTotal),
		ov.Since.Local().Format("15:04")+" to "+ov.Until.Local().Format("15:04"))}
	for _, s := range ov.Subscriptions {
		rows = append(rows, s.counts.row(s.SubscriptionID, s.Name, s.URL))
	}
	return out.table(headers, rows)
}
