// Package schemaregistry puts Hookline's Avro schemas in a
// Confluent-compatible schema registry (Confluent Schema Registry,
// Apicurio's ccompat API, Karapace, Redpanda) so that the records carry
// the registry's schema ids, and builds the record codecs with them.
//
// Subjects follow TopicNameStrategy, the default of Confluent's serializers
// and deserializers: the values of topic T are registered under "T-value".
// Each subject gets its record's released versions oldest first, so the
// registry's version numbers are Hookline's (version 1 is history v1), and
// so that each registration passes the registry's default BACKWARD check
// against the one before, as the schemas' release rules guarantee.
package schemaregistry

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"time"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/hookline/hookline/pkg/avro"
	"github.com/hookline/hookline/pkg/config"
	"github.com/hookline/hookline/pkg/record"
)

// Config says which registry to use, if any.
type Config struct {
	URLs     []string // none: the fixed ids of schemas/ids.json
	Username string   // HTTP basic auth, when set
	Password string
	// Register adds missing schemas to the registry. Without it they must
	// be registered already (by an operator, or a service allowed to) and
	// are only looked up.
	Register bool
}

// ConfigFromEnv reads the registry settings shared by every service.
func ConfigFromEnv(r *config.Reader) Config {
	return Config{
		URLs:     r.List("HOOKLINE_SCHEMA_REGISTRY_URL", "", "comma-separated URLs of a Confluent-compatible schema registry; empty: the fixed schema ids"),
		Username: r.String("HOOKLINE_SCHEMA_REGISTRY_USERNAME", "", "schema registry basic-auth user"),
		Password: r.String("HOOKLINE_SCHEMA_REGISTRY_PASSWORD", "", "schema registry basic-auth password"),
		Register: r.Bool("HOOKLINE_SCHEMA_REGISTRY_REGISTER", true, "register missing schemas at start; false: they must be registered already"),
	}
}

// LoadCodecs builds the record codecs: with the fixed ids when cfg names no
// registry, else with the ids register gets from it for subjects (each
// value subject's record: wire.Topics.Subjects).
func LoadCodecs(ctx context.Context, cfg Config, subjects map[string]string, log zerolog.Logger) (*record.Codecs, error) {
	reg, err := avro.Load()
	if err != nil {
		return nil, err
	}
	if len(cfg.URLs) > 0 {
		if reg, err = register(ctx, cfg, reg, subjects, log); err != nil {
			return nil, err
		}
	}
	return record.NewCodecs(reg)
}

// register registers every version of each subject's record in the
// registry (or, without cfg.Register, looks them up) and returns reg with
// the registry's ids, whose codecs ask the registry about ids they do not
// know, such as a newer version registered by a newer writer. Until the
// registry answers, Register retries (services may start before it does);
// an answer that refuses a schema, such as an incompatible change, ends it
// at once.
func register(ctx context.Context, cfg Config, reg *avro.Registry, subjects map[string]string, log zerolog.Logger) (*avro.Registry, error) {
	cl, err := cfg.client()
	if err != nil {
		return nil, err
	}
	for wait := 500 * time.Millisecond; ; wait = min(2*wait, 5*time.Second) {
		var ids map[uint32]uint32
		ids, err = registryIDs(ctx, cl, reg, subjects, cfg.Register)
		if err == nil {
			log.Info().Strs("registry", cfg.URLs).Int("subjects", len(subjects)).Bool("register", cfg.Register).Msg("schema ids from the registry")
			return reg.Renumbered(ids, func(ctx context.Context, id uint32) (string, error) {
				return schemaText(ctx, cl, id)
			})
		}
		if !retryable(err) {
			return nil, err
		}
		log.Warn().Err(err).Dur("retry_in", wait).Msg("registering schemas")
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(wait):
		}
	}
}

func (cfg Config) client() (*sr.Client, error) {
	opts := []sr.ClientOpt{sr.URLs(cfg.URLs...), sr.UserAgent("hookline")}
	if cfg.Username != "" {
		opts = append(opts, sr.BasicAuth(cfg.Username, cfg.Password))
	}
	return sr.NewClient(opts...)
}

// registryIDs registers or looks up every version of every subject's
// record, subjects in name order and versions oldest first, and returns
// the registry's id of each schema by its fixed id.
func registryIDs(ctx context.Context, cl *sr.Client, reg *avro.Registry, subjects map[string]string, create bool) (map[uint32]uint32, error) {
	names := make([]string, 0, len(subjects))
	for s := range subjects {
		names = append(names, s)
	}
	sort.Strings(names)
	ids := map[uint32]uint32{}
	for _, subject := range names {
		versions := reg.Versions(subjects[subject])
		if len(versions) == 0 {
			return nil, fmt.Errorf("schema registry: subject %s: no schema named %s", subject, subjects[subject])
		}
		for _, e := range versions {
			s := sr.Schema{Schema: e.Text, Type: sr.TypeAvro}
			var id int
			var err error
			if create {
				id, err = cl.RegisterSchema(ctx, subject, s, -1, -1)
			} else {
				var ss sr.SubjectSchema
				ss, err = cl.LookupSchema(ctx, subject, s)
				id = ss.ID
			}
			if err != nil {
				return nil, fmt.Errorf("schema registry: subject %s: %s version %d: %w", subject, e.Name, e.Version, err)
			}
			if id <= 0 {
				return nil, fmt.Errorf("schema registry: subject %s: %s version %d: no id in the answer", subject, e.Name, e.Version)
			}
			// The codecs write one id per record, whatever the topic: a
			// registry must give the same schema the same id in every
			// subject, as Confluent's, Apicurio's and Karapace's do.
			if prev, ok := ids[e.ID]; ok && prev != uint32(id) {
				return nil, fmt.Errorf("schema registry: subject %s: %s version %d has id %d here but %d in another subject",
					subject, e.Name, e.Version, id, prev)
			}
			ids[e.ID] = uint32(id)
		}
	}
	return ids, nil
}

// schemaText fetches the Avro schema registered under id.
func schemaText(ctx context.Context, cl *sr.Client, id uint32) (string, error) {
	s, err := cl.SchemaByID(ctx, int(id))
	if err != nil {
		return "", err
	}
	if s.Type != sr.TypeAvro {
		return "", fmt.Errorf("schema id %d is %s, not Avro", id, s.Type)
	}
	if len(s.References) > 0 {
		return "", fmt.Errorf("schema id %d has references, which Hookline's records never use", id)
	}
	return s.Schema, nil
}

// retryable reports whether err may pass on a retry: the registry did not
// answer, or answered 5xx, 408 or 429. Anything else is its final word or
// ours: bad credentials, an incompatible or invalid schema, a schema not
// registered, ids that disagree.
func retryable(err error) bool {
	var re *sr.ResponseError
	if errors.As(err, &re) {
		c := re.StatusCode
		return c >= 500 || c == http.StatusRequestTimeout || c == http.StatusTooManyRequests
	}
	var ue *url.Error
	return errors.As(err, &ue)
}
