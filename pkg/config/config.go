// Package config reads a service's settings from environment variables,
// with command-line flags mirroring them (KAFKA_BROKERS or -kafka-brokers),
// and collects every problem so that a misconfigured service fails at start
// with one message that names all of them.
package config

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Reader looks settings up in flags first, then the environment, then the
// default. Read every setting, then call Err.
type Reader struct {
	flags   map[string]string
	lookup  func(string) (string, bool)
	used    map[string]setting
	errs    []error
	help    bool
	check   bool // -check: validate the settings, run nothing
	noFlags bool // FromEnv: the arguments are not settings
}

type setting struct {
	def, doc string
	required bool
	envOnly  bool // EnvOnly: no flag
}

// FromOS reads os.Args and the process environment.
func FromOS() *Reader { return New(os.Args[1:], os.LookupEnv) }

// FromEnv reads settings from lookup only, for commands whose arguments
// are their own (hookctl's subcommands, hookload's flags): no flag mirrors
// a setting, and Usage lists none.
func FromEnv(lookup func(string) (string, bool)) *Reader {
	r := New(nil, lookup)
	r.noFlags = true
	return r
}

// New reads the given arguments (-name=value or -name value) and lookup.
func New(args []string, lookup func(string) (string, bool)) *Reader {
	r := &Reader{flags: map[string]string{}, lookup: lookup, used: map[string]setting{}}
	for i := 0; i < len(args); i++ {
		a := strings.TrimLeft(args[i], "-")
		if a == "h" || a == "help" {
			r.help = true
			continue
		}
		if a == "check" {
			r.check = true
			continue
		}
		name, val, ok := strings.Cut(a, "=")
		if !ok {
			if i+1 >= len(args) {
				r.errs = append(r.errs, fmt.Errorf("flag -%s needs a value", name))
				continue
			}
			i++
			val = args[i]
		}
		r.flags[name] = val
	}
	return r
}

// flagName turns KAFKA_BROKERS into kafka-brokers and HOOKLINE_HTTP_ADDR
// into http-addr.
func flagName(env string) string {
	return strings.ReplaceAll(strings.ToLower(strings.TrimPrefix(env, "HOOKLINE_")), "_", "-")
}

func (r *Reader) raw(env, def, doc string) (string, bool) {
	r.used[env] = setting{def: def, doc: doc}
	if v, ok := r.flags[flagName(env)]; ok {
		return v, true
	}
	if v, ok := r.lookup(env); ok && v != "" {
		return v, true
	}
	return def, false
}

// String returns a text setting.
func (r *Reader) String(env, def, doc string) string {
	v, _ := r.raw(env, def, doc)
	return v
}

// EnvOnly returns a text setting that a library reads from the
// environment by itself (OpenTelemetry's SDK): it is listed by Usage, so
// that -h and the docs show it, but no flag mirrors it, since the library
// would not see the flag.
func (r *Reader) EnvOnly(env, def, doc string) string {
	r.used[env] = setting{def: def, doc: doc, envOnly: true}
	if v, ok := r.lookup(env); ok && v != "" {
		return v
	}
	return def
}

// Required returns a text setting that has no default.
func (r *Reader) Required(env, doc string) string {
	v, ok := r.raw(env, "", doc)
	r.used[env] = setting{doc: doc, required: true}
	if !ok {
		r.errs = append(r.errs, fmt.Errorf("%s is required: %s", env, doc))
	}
	return v
}

// Int returns an integer setting.
func (r *Reader) Int(env string, def int, doc string) int {
	v, ok := r.raw(env, strconv.Itoa(def), doc)
	if !ok {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		r.errs = append(r.errs, fmt.Errorf("%s=%q: not an integer", env, v))
		return def
	}
	return n
}

// Bool returns a boolean setting (true, false, 1, 0).
func (r *Reader) Bool(env string, def bool, doc string) bool {
	v, ok := r.raw(env, strconv.FormatBool(def), doc)
	if !ok {
		return def
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		r.errs = append(r.errs, fmt.Errorf("%s=%q: not a boolean", env, v))
		return def
	}
	return b
}

// Duration returns a duration setting such as 250ms or 5s.
func (r *Reader) Duration(env string, def time.Duration, doc string) time.Duration {
	v, ok := r.raw(env, shortDuration(def), doc)
	if !ok {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		r.errs = append(r.errs, fmt.Errorf("%s=%q: not a duration like 500ms or 5s", env, v))
		return def
	}
	return d
}

// shortDuration writes d as time.ParseDuration reads it, without the zero
// units Duration.String adds: 24h rather than 24h0m0s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// List returns a comma-separated setting with blanks dropped.
func (r *Reader) List(env, def, doc string) []string {
	v := r.String(env, def, doc)
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// Fail records a problem found while interpreting a setting.
func (r *Reader) Fail(env string, err error) {
	r.errs = append(r.errs, fmt.Errorf("%s: %w", env, err))
}

// Err reports every problem seen, and flags that no setting uses. With -h
// it writes the settings table to w and returns ErrHelp; with -check and
// no problem it returns ErrChecked, so that a deployment's settings can be
// validated by the binary itself without running it.
func (r *Reader) Err(w io.Writer) error {
	if r.help {
		r.Usage(w)
		return ErrHelp
	}
	known := map[string]bool{}
	for env, s := range r.used {
		if !s.envOnly {
			known[flagName(env)] = true
		}
	}
	for name := range r.flags {
		if !known[name] {
			r.errs = append(r.errs, fmt.Errorf("unknown flag -%s", name))
		}
	}
	if err := errors.Join(r.errs...); err != nil || !r.check {
		return err
	}
	return ErrChecked
}

// ErrHelp is returned by Err when help was asked for.
var ErrHelp = errors.New("help requested")

// ErrChecked is returned by Err when -check was asked for and the
// settings are valid.
var ErrChecked = errors.New("the settings are valid")

// Usage writes the settings read so far, sorted by name, in the format
// ParseHelp reads back: a header line, then per setting a line with its
// environment variable, its flag (unless FromEnv) and its default (quoted,
// or the word required), and an indented line of its description. A
// default derived from the host name ends in -<hostname> rather than this
// machine's name, so that the help, and the README's settings table made
// from it, read the same everywhere.
func (r *Reader) Usage(w io.Writer) {
	names := make([]string, 0, len(r.used))
	for env := range r.used {
		names = append(names, env)
	}
	sort.Strings(names)
	header := helpHeader
	if r.noFlags {
		header = helpHeaderNoFlags
	}
	fmt.Fprintln(w, header)
	host, _ := os.Hostname()
	for _, env := range names {
		s := r.used[env]
		def := strconv.Quote(s.def)
		if host != "" && strings.HasSuffix(s.def, "-"+host) {
			def = strconv.Quote(strings.TrimSuffix(s.def, host) + hostnamePlaceholder)
		}
		if s.required {
			def = "required"
		}
		if r.noFlags || s.envOnly {
			fmt.Fprintf(w, "  %-40s %s\n      %s\n", env, def, s.doc)
			continue
		}
		fmt.Fprintf(w, "  %-40s -%-36s %s\n      %s\n", env, flagName(env), def, s.doc)
	}
}
