package config

import (
	"bufio"
	"fmt"
	"strconv"
	"strings"
)

// The header lines Usage writes before the settings; ParseHelp starts
// reading after either.
const (
	helpHeader        = "Settings (environment variable, flag, default):"
	helpHeaderNoFlags = "Settings (environment variable, default):"
)

// hostnamePlaceholder stands for this machine's name in a default shown
// by Usage.
const hostnamePlaceholder = "<hostname>"

// Doc is one setting as a binary's -h lists it.
type Doc struct {
	Env      string `json:"env"`            // the environment variable
	Flag     string `json:"flag,omitempty"` // its flag without the dash; empty when the binary takes settings from the environment only
	Default  string `json:"default"`
	Required bool   `json:"required,omitempty"`
	Doc      string `json:"doc"` // what it is for
}

// ParseHelp reads back the settings Usage wrote into a binary's -h output,
// whatever text comes before the header (a command's own usage) and after
// the list. It is how tools learn what each binary reads without
// importing it: the README's settings table and the deploy checks are
// made from it.
func ParseHelp(text string) ([]Doc, error) {
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	found := false
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); line == helpHeader || line == helpHeaderNoFlags {
			found = true
			break
		}
	}
	if !found {
		return nil, fmt.Errorf("no %q line", helpHeader)
	}
	var docs []Doc
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "  ") || strings.HasPrefix(line, "      ") || strings.TrimSpace(line) == "" {
			break // the list has ended
		}
		d, err := parseHelpLine(strings.TrimSpace(line))
		if err != nil {
			return nil, err
		}
		if !sc.Scan() || !strings.HasPrefix(sc.Text(), "      ") {
			return nil, fmt.Errorf("%s: no description line", d.Env)
		}
		d.Doc = strings.TrimSpace(sc.Text())
		docs = append(docs, d)
	}
	return docs, sc.Err()
}

// parseHelpLine reads "ENV [-flag] default".
func parseHelpLine(line string) (Doc, error) {
	env, rest, _ := strings.Cut(line, " ")
	d := Doc{Env: env}
	rest = strings.TrimSpace(rest)
	if strings.HasPrefix(rest, "-") {
		flag, after, _ := strings.Cut(rest, " ")
		d.Flag, rest = flag[1:], strings.TrimSpace(after)
	}
	if rest == "required" {
		d.Required = true
		return d, nil
	}
	def, err := strconv.Unquote(rest)
	if err != nil {
		return Doc{}, fmt.Errorf("%s: default %s is not quoted: %w", env, rest, err)
	}
	d.Default = def
	return d, nil
}
