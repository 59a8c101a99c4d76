package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hookline/hookline/pkg/selfsigned"
	"github.com/hookline/hookline/pkg/signature"
)

type receiver struct{ certPEM []byte }

// startReceiver serves HTTPS (HTTP/2 and HTTP/1.1) on addr, printing each
// delivery with its verification result. Webhooks to /fail (and paths
// under it) answer 503, an endpoint that keeps failing, to show the alert
// emails, until someone fixes it: GET /fail/fix makes them answer 204 (the
// endpoint recovers), GET /fail/break makes them fail again. Webhooks are
// always POSTs, so a GET is never mistaken for one.
func startReceiver(ctx context.Context, addr, secret string) (*receiver, error) {
	cert, err := selfsigned.New()
	if err != nil {
		return nil, err
	}
	s, err := signature.ParseSecret(secret)
	if err != nil {
		return nil, err
	}
	v := &signature.Verifier{Secrets: []signature.Secret{s}}
	var fixed atomic.Bool // /fail answers 204 instead of 503
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && (r.URL.Path == "/fail/fix" || r.URL.Path == "/fail/break") {
			fixed.Store(r.URL.Path == "/fail/fix")
			state := "fails with 503 again"
			if fixed.Load() {
				state = "is fixed: it answers 204 from now on"
			}
			fmt.Printf("[receiver] %s the /fail endpoint %s\n", time.Now().Format("15:04:05"), state)
			fmt.Fprintf(w, "the /fail endpoint %s\n", state)
			return
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			http.Error(w, "unreadable body", http.StatusBadRequest)
			return
		}
		// The signatures cover the bytes as sent: check them before
		// decompressing anything.
		verdict := "signature verified"
		if err := v.Verify(r.Header, body); err != nil {
			verdict = "SIGNATURE NOT VERIFIED: " + err.Error()
		}
		if r.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(bytes.NewReader(body))
			if err == nil {
				body, err = io.ReadAll(io.LimitReader(zr, 16<<20))
			}
			if err != nil {
				http.Error(w, "bad gzip body", http.StatusBadRequest)
				return
			}
			verdict += " (gzip)"
		}
		var ev struct {
			Type    string `json:"type"`
			Subject string `json:"subject"`
		}
		_ = json.Unmarshal(body, &ev)
		status := http.StatusNoContent
		if (r.URL.Path == "/fail" || strings.HasPrefix(r.URL.Path, "/fail/")) && !fixed.Load() {
			status = http.StatusServiceUnavailable
			verdict += ", answered 503 (a failing endpoint, for the alert demo; GET /fail/fix fixes it)"
		}
		fmt.Printf("[receiver] %s %s %s webhook-id=%s type=%s subject=%s: %s\n  %s\n",
			time.Now().Format("15:04:05"), r.Proto, r.URL.Path, r.Header.Get(signature.HeaderID), ev.Type, ev.Subject, verdict, body)
		w.WriteHeader(status)
	})
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("demo receiver: %w", err)
	}
	srv := &http.Server{Handler: h, TLSConfig: cert.ServerConfig(), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.ServeTLS(ln, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Println("[receiver] stopped:", err)
		}
	}()
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	return &receiver{certPEM: cert.PEM}, nil
}
