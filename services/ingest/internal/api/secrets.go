package api

import (
	"bytes"
	"net/http"
	"time"

	"github.com/hookline/hookline/pkg/problem"
	"github.com/hookline/hookline/pkg/record"
	"github.com/hookline/hookline/pkg/signature"
)

// Secret rotation bounds.
const (
	defaultGrace = 24 * time.Hour
	maxGrace     = 7 * 24 * time.Hour
	// maxSecrets bounds the secrets kept (and signatures sent) when
	// rotations follow each other within the grace period; the oldest go.
	maxSecrets = 5
)

type rotateInput struct {
	GraceSeconds *int64 `json:"grace_seconds"`
}

// rotateSecret makes a new signing secret the first one. The previous
// secrets stay valid for the grace period (body {"grace_seconds": N},
// default a day, at most 7 days), during which every webhook carries one
// signature per secret. The answer shows the new secret, and only it.
func (s *Server) rotateSecret(w http.ResponseWriter, r *http.Request) {
	old, ok := s.lookup(w, r)
	if !ok {
		return
	}
	grace, p := s.readGrace(w, r)
	if p != nil {
		problem.Write(w, r, p)
		return
	}
	_, whsec, err := signature.NewSecret()
	if err != nil {
		s.unavailable(w, r, "randomness", err)
		return
	}
	now := s.now()
	next := *old
	fresh := record.Secret{Sealed: s.Box.Seal([]byte(whsec), []byte(old.ID)), CreatedAt: now}
	next.Secrets = rotated(old.Secrets, fresh, now, grace)
	next.UpdatedAt = s.versionAfter(old.UpdatedAt)
	if err := s.writeSubscription(r, next.ID, &next); err != nil {
		s.unavailable(w, r, "Kafka", err)
		return
	}
	v := viewOf(&next)
	v.Secret = whsec
	writeJSON(w, http.StatusOK, v)
}

// readGrace reads the optional body of a rotation; an empty body and null
// are the same as none.
func (s *Server) readGrace(w http.ResponseWriter, r *http.Request) (time.Duration, *problem.Details) {
	body, p := s.readBody(w, r)
	trimmed := bytes.TrimSpace(body)
	if p != nil || len(trimmed) == 0 {
		return defaultGrace, p
	}
	if p := jsonContent(r); p != nil {
		return 0, p
	}
	if bytes.Equal(trimmed, []byte("null")) {
		return defaultGrace, nil
	}
	if fe, deep := problem.TooDeep(body, problem.MaxNesting); deep {
		return 0, problem.Invalid(fe)
	}
	var in rotateInput
	if errs := decodeStrict(body, &in); errs != nil {
		return 0, problem.Invalid(errs...)
	}
	if in.GraceSeconds == nil {
		return defaultGrace, nil
	}
	if g := *in.GraceSeconds; g < 0 || g > int64(maxGrace/time.Second) {
		return 0, problem.Invalid(problem.FieldError{Field: "grace_seconds", Detail: "must be 0 to 604800 (7 days)"})
	}
	return time.Duration(*in.GraceSeconds) * time.Second, nil
}

// rotated puts fresh first; every older secret expires at now+grace, or
// earlier if it already was to. Expired secrets are dropped, and at most
// maxSecrets are kept.
func rotated(secrets []record.Secret, fresh record.Secret, now time.Time, grace time.Duration) []record.Secret {
	until := now.Add(grace)
	out := []record.Secret{fresh}
	for _, sec := range secrets {
		if sec.ExpiresAt == nil || sec.ExpiresAt.After(until) {
			sec.ExpiresAt = &until
		}
		if sec.ExpiresAt.After(now) && len(out) < maxSecrets {
			out = append(out, sec)
		}
	}
	return out
}
