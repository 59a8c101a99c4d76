package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"golang.org/x/term"
)

// printer writes either aligned tables for people or JSON for scripts.
type printer struct {
	w       io.Writer
	json    bool
	noColor bool // NO_COLOR
}

// table prints rows under headers, or each row as a JSON object keyed by
// the lower-cased headers.
func (p *printer) table(headers []string, rows [][]string) error {
	if p.json {
		out := make([]map[string]string, 0, len(rows))
		for _, r := range rows {
			m := map[string]string{}
			for i, h := range headers {
				m[strings.ToLower(h)] = r[i]
			}
			out = append(out, m)
		}
		return p.value(out)
	}
	tw := tabwriter.NewWriter(p.w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, p.bold(strings.Join(headers, "\t")))
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

// value prints any value as indented JSON.
func (p *printer) value(v any) error {
	enc := json.NewEncoder(p.w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// bold emphasises s only on a terminal, unless NO_COLOR is set.
func (p *printer) bold(s string) string {
	if f, ok := p.w.(*os.File); ok && !p.noColor && term.IsTerminal(int(f.Fd())) {
		return "\x1b[1m" + s + "\x1b[0m"
	}
	return s
}

func splitComma(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
