package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/hookline/hookline/pkg/config"
	"github.com/hookline/hookline/pkg/stack"
)

// settingsCommand lists every setting of every binary, from their -h.
func settingsCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("hookstack settings", flag.ContinueOnError)
	fs.SetOutput(stderr)
	bin := fs.String("bin", "", "folder of the built binaries (default: build them from the repository into a temporary one)")
	asJSON := fs.Bool("json", false, `print the services and each binary's settings as JSON: {"services": [...], "settings": {binary: [{env, flag, default, required, doc}]}}`)
	readme := fs.String("readme", "", "rewrite the settings table of this markdown file in place")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: hookstack settings [-bin DIR] [-json | -readme FILE]\n\nEvery setting of %s, from each one's -h.\n\n", binaryNames())
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	dir := *bin
	if dir == "" {
		repo, err := stack.FindRepo(".")
		if err != nil {
			return err
		}
		if dir, err = os.MkdirTemp("", "hookstack-bin"); err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		if err := stack.Build(ctx, repo, dir); err != nil {
			return err
		}
	}
	docs, err := readSettings(ctx, dir)
	if err != nil {
		return err
	}
	switch {
	case *asJSON:
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			Services []string                `json:"services"`
			Settings map[string][]config.Doc `json:"settings"`
		}{stack.ServiceNames(), docs})
	case *readme != "":
		b, err := os.ReadFile(*readme)
		if err != nil {
			return err
		}
		out, err := replaceTable(string(b), settingsTable(docs))
		if err != nil {
			return fmt.Errorf("%s: %w", *readme, err)
		}
		return os.WriteFile(*readme, []byte(out), 0o644)
	default:
		_, err := io.WriteString(stdout, settingsTable(docs))
		return err
	}
}

// helpOutput runs a binary with -h in an environment of no settings, so
// that defaults derived from other settings show as they are by default.
func helpOutput(ctx context.Context, path string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, "-h")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	cmd.Dir = os.TempDir() // no .hookline/hookline.env to read
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("%s -h: %w\n%s", filepath.Base(path), err, out.String())
	}
	return out.String(), nil
}

// readSettings is every binary's settings, by binary name.
func readSettings(ctx context.Context, dir string) (map[string][]config.Doc, error) {
	dir, err := filepath.Abs(dir) // the binaries run elsewhere
	if err != nil {
		return nil, err
	}
	out := map[string][]config.Doc{}
	for _, b := range stack.Binaries {
		text, err := helpOutput(ctx, filepath.Join(dir, b.Name))
		if err != nil {
			return nil, err
		}
		docs, err := config.ParseHelp(text)
		if err != nil {
			return nil, fmt.Errorf("%s -h: %w", b.Name, err)
		}
		out[b.Name] = docs
	}
	return out, nil
}

// reading is what one binary makes of a setting.
type reading struct {
	binary string
	doc    config.Doc
}

// settingsTable is the README's table: a row per environment variable,
// with its default (per binary where they differ), the binaries reading
// it, and what it is for. Rows read by every service come first, then by
// the first binary reading them, each group by name.
func settingsTable(docs map[string][]config.Doc) string {
	byEnv := map[string][]reading{}
	for _, b := range stack.Binaries {
		for _, d := range docs[b.Name] {
			byEnv[d.Env] = append(byEnv[d.Env], reading{b.Name, d})
		}
	}
	rank := func(rs []reading) int {
		if everyService(rs) {
			return -1
		}
		return slices.IndexFunc(stack.Binaries, func(b stack.Binary) bool { return b.Name == rs[0].binary })
	}
	envs := make([]string, 0, len(byEnv))
	for env := range byEnv {
		envs = append(envs, env)
	}
	slices.SortFunc(envs, func(a, b string) int {
		if ra, rb := rank(byEnv[a]), rank(byEnv[b]); ra != rb {
			return ra - rb
		}
		return strings.Compare(a, b)
	})
	var b strings.Builder
	b.WriteString("| variable | default | read by | what |\n|---|---|---|---|\n")
	for _, env := range envs {
		rs := byEnv[env]
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", env, defaults(rs), readers(rs), cell(rs[0].doc.Doc))
	}
	return b.String()
}

func everyService(rs []reading) bool {
	for _, s := range stack.Services {
		if !slices.ContainsFunc(rs, func(r reading) bool { return r.binary == s.Name }) {
			return false
		}
	}
	return true
}

// readers names the binaries reading a setting, "every service" for all
// of them.
func readers(rs []reading) string {
	var names []string
	if everyService(rs) {
		names = append(names, "every service")
	}
	for _, r := range rs {
		if !everyService(rs) || !isService(r.binary) {
			names = append(names, r.binary)
		}
	}
	return strings.Join(names, ", ")
}

func isService(name string) bool {
	return slices.ContainsFunc(stack.Services, func(s stack.Service) bool { return s.Name == name })
}

// defaults is a setting's default, or each binary's where they differ.
func defaults(rs []reading) string {
	show := func(d config.Doc) string {
		switch {
		case d.Required:
			return "required"
		case d.Default == "":
			return "none"
		default:
			return "`" + strings.ReplaceAll(d.Default, "|", `\|`) + "`"
		}
	}
	var order []string
	by := map[string][]string{}
	for _, r := range rs {
		v := show(r.doc)
		if _, ok := by[v]; !ok {
			order = append(order, v)
		}
		by[v] = append(by[v], r.binary)
	}
	if len(order) == 1 {
		return order[0]
	}
	parts := make([]string, len(order))
	for i, v := range order {
		parts[i] = v + " (" + strings.Join(by[v], ", ") + ")"
	}
	return strings.Join(parts, "; ")
}

// cell makes text safe inside a table cell: no column break, and no
// <placeholder> taken for an HTML tag.
func cell(s string) string {
	return strings.NewReplacer("|", `\|`, "<", "&lt;", ">", "&gt;").Replace(s)
}

// The README's table sits between these two lines.
const (
	tableStart = "<!-- settings table: made by `make settings-table` from each binary's -h; a test fails when it is out of date -->"
	tableEnd   = "<!-- end of settings table -->"
)

// replaceTable puts table between the markers of doc.
func replaceTable(doc, table string) (string, error) {
	start := strings.Index(doc, tableStart)
	end := strings.Index(doc, tableEnd)
	if start < 0 || end < start {
		return "", errors.New("no settings table markers (" + tableStart + " ... " + tableEnd + ")")
	}
	return doc[:start+len(tableStart)] + "\n" + table + doc[end:], nil
}
