package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

var httpClient = &http.Client{Timeout: 30 * time.Second}

// call makes an API request; a non-2xx answer becomes an error carrying
// the problem details' text.
func call(ctx context.Context, e env, method, path string, body any, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(e.APIURL, "/")+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+e.APIKey)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, strings.TrimSpace(string(raw)))
	}
	if out != nil && len(raw) > 0 {
		return json.Unmarshal(raw, out)
	}
	return nil
}

type subscription struct {
	ID         string   `json:"id"`
	Name       string   `json:"name"`
	URL        string   `json:"url"`
	EventTypes []string `json:"event_types"`
	Enabled    bool     `json:"enabled"`
	Reason     string   `json:"disabled_reason"`
	Secret     string   `json:"secret,omitempty"`
}

func subsCommand(ctx context.Context, e env, out *printer, args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: subs needs a subcommand", errUsage)
	}
	needID := func() (string, error) {
		if len(args) != 2 {
			return "", fmt.Errorf("%w: subs %s <id>", errUsage, args[0])
		}
		return args[1], nil
	}
	switch args[0] {
	case "list":
		var list struct {
			Data []json.RawMessage `json:"data"`
		}
		if err := call(ctx, e, http.MethodGet, "/v1/subscriptions", nil, &list); err != nil {
			return err
		}
		if out.json {
			return out.value(list.Data)
		}
		rows := [][]string{}
		for _, raw := range list.Data {
			var s subscription
			_ = json.Unmarshal(raw, &s)
			state := "enabled"
			if !s.Enabled {
				state = "disabled " + s.Reason
			}
			rows = append(rows, []string{s.ID, s.Name, s.URL, strings.Join(s.EventTypes, ","), state})
		}
		return out.table([]string{"ID", "NAME", "URL", "EVENT_TYPES", "STATE"}, rows)
	case "get":
		id, err := needID()
		if err != nil {
			return err
		}
		var v json.RawMessage
		if err := call(ctx, e, http.MethodGet, "/v1/subscriptions/"+id, nil, &v); err != nil {
			return err
		}
		return out.value(v)
	case "create":
		if len(args) != 3 || args[1] != "-f" {
			return fmt.Errorf("%w: subs create -f <file.json>", errUsage)
		}
		var raw []byte
		var err error
		if args[2] == "-" {
			raw, err = io.ReadAll(os.Stdin)
		} else {
			raw, err = os.ReadFile(args[2])
		}
		if err != nil {
			return err
		}
		var body json.RawMessage = raw
		var v json.RawMessage
		if err := call(ctx, e, http.MethodPost, "/v1/subscriptions", body, &v); err != nil {
			return err
		}
		return out.value(v)
	case "enable", "disable":
		id, err := needID()
		if err != nil {
			return err
		}
		var v json.RawMessage
		if err := call(ctx, e, http.MethodPatch, "/v1/subscriptions/"+id, map[string]bool{"enabled": args[0] == "enable"}, &v); err != nil {
			return err
		}
		return out.value(v)
	case "rotate", "test":
		id, err := needID()
		if err != nil {
			return err
		}
		// A ping waits for its first attempt (up to 10 s) and shows it.
		path := "/v1/subscriptions/" + id + "/test?wait=true"
		if args[0] == "rotate" {
			path = "/v1/subscriptions/" + id + "/secrets/rotate"
		}
		var v json.RawMessage
		if err := call(ctx, e, http.MethodPost, path, map[string]any{}, &v); err != nil {
			return err
		}
		return out.value(v)
	default:
		return fmt.Errorf("%w: unknown subs subcommand %q", errUsage, args[0])
	}
}

func eventsCommand(ctx context.Context, e env, out *printer, args []string) error {
	if len(args) != 3 || args[0] != "send" {
		return fmt.Errorf("%w: events send <type> <json-data>", errUsage)
	}
	var data json.RawMessage
	if err := json.Unmarshal([]byte(args[2]), &data); err != nil {
		return fmt.Errorf("%w: data is not JSON: %v", errUsage, err)
	}
	var v struct {
		ID string `json:"id"`
	}
	if err := call(ctx, e, http.MethodPost, "/v1/events", map[string]any{"type": args[1], "data": data}, &v); err != nil {
		return err
	}
	if out.json {
		return out.value(v)
	}
	_, err := fmt.Fprintln(out.w, v.ID)
	return err
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
