package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

type processes struct {
	cmds   []*exec.Cmd
	done   []chan struct{}
	exited chan error
}

// services are what startServices starts, in the order of their ops ports.
var services = []string{"ingest", "matcher", "sender", "retry", "notify", "logs"}

// startServices starts the services with env added to this process's
// environment; their output goes to this terminal.
func startServices(ctx context.Context, binDir string, env []string) (*processes, error) {
	p := &processes{exited: make(chan error, len(services))}
	base, err := strconv.Atoi(envOr("HOOKLINE_OPS_BASE_PORT", "9101"))
	if err != nil {
		return nil, fmt.Errorf("HOOKLINE_OPS_BASE_PORT: %w", err)
	}
	for i, name := range services {
		cmd := exec.Command(filepath.Join(binDir, name))
		// Each service's /healthz, /readyz and /metrics: 9101 to 9106 by default.
		cmd.Env = append(append(os.Environ(), env...), fmt.Sprintf("HOOKLINE_OPS_ADDR=127.0.0.1:%d", base+i))
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Start(); err != nil {
			p.stop()
			return nil, fmt.Errorf("start %s (run `make build` first): %w", name, err)
		}
		done := make(chan struct{})
		p.cmds, p.done = append(p.cmds, cmd), append(p.done, done)
		go func() {
			err := cmd.Wait()
			close(done)
			if ctx.Err() == nil {
				p.exited <- fmt.Errorf("%s exited: %v", name, err)
			}
		}()
	}
	return p, nil
}

// stop asks every service to shut down gracefully and waits a while.
func (p *processes) stop() {
	for _, c := range p.cmds {
		_ = c.Process.Signal(syscall.SIGTERM)
	}
	deadline := time.After(15 * time.Second)
	for i, c := range p.cmds {
		select {
		case <-p.done[i]:
		case <-deadline:
			_ = c.Process.Kill()
			<-p.done[i]
		}
	}
}

// ensureDemoSubscription waits for ingest and subscribes the demo receiver
// to every event type, once.
func ensureDemoSubscription(ctx context.Context, ingest, secret string) error {
	url := "https://" + receiverAddr + "/demo"
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, ingest+"/v1/subscriptions", nil)
		req.Header.Set("Authorization", "Bearer "+apiKey)
		resp, err := http.DefaultClient.Do(req)
		if err == nil && resp.StatusCode == http.StatusOK {
			var list struct {
				Data []struct {
					URL string `json:"url"`
				} `json:"data"`
			}
			err = json.NewDecoder(resp.Body).Decode(&list)
			resp.Body.Close()
			if err != nil {
				return err
			}
			for _, s := range list.Data {
				if s.URL == url {
					return nil
				}
			}
			break
		}
		if resp != nil {
			resp.Body.Close()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	body, _ := json.Marshal(map[string]any{"name": "demo receiver", "url": url, "event_types": []string{"*"}, "secret": secret})
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, ingest+"/v1/subscriptions", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+apiKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		var b bytes.Buffer
		_, _ = b.ReadFrom(resp.Body)
		return fmt.Errorf("create demo subscription: %s %s", resp.Status, b.String())
	}
	return nil
}
