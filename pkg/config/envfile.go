package config

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
)

// An env file holds settings as shell lines, "export NAME=value", so that
// a shell can source it and a program can read it: `make run` (devstack)
// writes where its stack listens to .hookline/hookline.env, and hookctl
// reads it by default.

// Setting is one line of an env file.
type Setting struct{ Name, Value string }

// bare is a value that needs no shell quoting.
var bare = regexp.MustCompile(`^[A-Za-z0-9_./:,=@+-]*$`)

// WriteEnvFile writes settings to path (mode 0600: it may hold an API
// key), after a comment line, replacing the file.
func WriteEnvFile(path, comment string, settings []Setting) error {
	var b bytes.Buffer
	for line := range strings.SplitSeq(comment, "\n") {
		fmt.Fprintf(&b, "# %s\n", line)
	}
	for _, s := range settings {
		fmt.Fprintf(&b, "export %s\n", ExportLine(s))
	}
	return os.WriteFile(path, b.Bytes(), 0o600)
}

// ExportLine is NAME=value, the value quoted for a shell when it needs it.
func ExportLine(s Setting) string {
	if bare.MatchString(s.Value) {
		return s.Name + "=" + s.Value
	}
	return s.Name + "='" + strings.ReplaceAll(s.Value, "'", `'\''`) + "'"
}

// EnvFile reads an env file written by WriteEnvFile (or by hand: NAME=value
// lines, "export " optional, values bare, 'single' or "double" quoted,
// # comments) and returns a lookup of its settings, for New. A missing
// file is an empty lookup, not an error.
func EnvFile(path string) (func(string) (string, bool), error) {
	raw, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return func(string) (string, bool) { return "", false }, nil
	}
	if err != nil {
		return nil, err
	}
	vals := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, value, ok := strings.Cut(strings.TrimPrefix(line, "export "), "=")
		if !ok || name == "" {
			return nil, fmt.Errorf("%s:%d: want NAME=value", path, n)
		}
		switch {
		case len(value) >= 2 && value[0] == '\'' && value[len(value)-1] == '\'':
			value = strings.ReplaceAll(value[1:len(value)-1], `'\''`, "'")
		case len(value) >= 2 && value[0] == '"':
			if value, err = strconv.Unquote(value); err != nil {
				return nil, fmt.Errorf("%s:%d: %v", path, n, err)
			}
		}
		vals[strings.TrimSpace(name)] = value
	}
	return func(k string) (string, bool) { v, ok := vals[k]; return v, ok }, nil
}

// Chain looks a setting up in each lookup in turn: the first that has it
// wins (an empty value counts as not set).
func Chain(lookups ...func(string) (string, bool)) func(string) (string, bool) {
	return func(k string) (string, bool) {
		for _, l := range lookups {
			if v, ok := l(k); ok && v != "" {
				return v, true
			}
		}
		return "", false
	}
}
