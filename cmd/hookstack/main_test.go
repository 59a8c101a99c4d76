package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hookline/hookline/pkg/config"
	"github.com/hookline/hookline/pkg/stack"
)

// Every binary is built once for the tests of this package.
var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

func repo(t *testing.T) string {
	t.Helper()
	dir, err := stack.FindRepo(".")
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

func builtBinaries(t *testing.T) string {
	t.Helper()
	root := repo(t)
	buildOnce.Do(func() {
		if binDir, buildErr = os.MkdirTemp("", "hookstack-test-bin"); buildErr == nil {
			buildErr = stack.Build(context.Background(), root, binDir)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binDir
}

// TestEveryBinaryAnswersHelp: every binary of the repository (services,
// hookctl, devstack, hookstack, hookload), run with -h or --help, exits 0
// and lists the settings it reads, without starting anything: it leaves
// nothing in its working directory (devstack used to start the stack).
func TestEveryBinaryAnswersHelp(t *testing.T) {
	bin := builtBinaries(t)
	for _, b := range stack.Binaries {
		for _, arg := range []string{"-h", "--help"} {
			t.Run(b.Name+" "+arg, func(t *testing.T) {
				dir := t.TempDir()
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				cmd := exec.CommandContext(ctx, filepath.Join(bin, b.Name), arg)
				cmd.Dir, cmd.Env = dir, []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
				var out bytes.Buffer
				cmd.Stdout, cmd.Stderr = &out, &out
				if err := cmd.Run(); err != nil {
					t.Fatalf("%s %s: %v\n%s", b.Name, arg, err, out.String())
				}
				docs, err := config.ParseHelp(out.String())
				if err != nil || len(docs) == 0 {
					t.Fatalf("%s %s lists no settings (%v):\n%s", b.Name, arg, err, out.String())
				}
				for _, d := range docs {
					if d.Doc == "" {
						t.Errorf("%s: %s has no description", b.Name, d.Env)
					}
				}
				if left, _ := os.ReadDir(dir); len(left) > 0 {
					t.Errorf("%s %s left %s in its working directory: it started something", b.Name, arg, left[0].Name())
				}
			})
		}
	}
}

// TestREADMESettingsTable: the README's settings table is the one made
// from every binary's -h, so every setting a binary reads is in it, with
// its default and the binaries reading it, and nothing else is.
func TestREADMESettingsTable(t *testing.T) {
	docs, err := readSettings(context.Background(), builtBinaries(t))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(repo(t), "README.md")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want, err := replaceTable(string(b), settingsTable(docs))
	if err != nil {
		t.Fatal(err)
	}
	if want == string(b) {
		return
	}
	have, should := tableLines(string(b)), tableLines(want)
	for l := range should {
		if !have[l] {
			t.Errorf("missing or different: %s", l)
		}
	}
	for l := range have {
		if !should[l] {
			t.Errorf("not what the binaries say: %s", l)
		}
	}
	t.Errorf("README.md's settings table is out of date: run `make settings-table`")
}

func tableLines(doc string) map[string]bool {
	out := map[string]bool{}
	start, end := strings.Index(doc, tableStart), strings.Index(doc, tableEnd)
	if start < 0 || end < start {
		return out
	}
	for _, l := range strings.Split(doc[start+len(tableStart):end], "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out[l] = true
		}
	}
	return out
}

func TestSettingsTable(t *testing.T) {
	every := func(d config.Doc) map[string][]config.Doc {
		out := map[string][]config.Doc{}
		for _, s := range stack.Services {
			out[s.Name] = []config.Doc{d}
		}
		return out
	}
	docs := every(config.Doc{Env: "KAFKA_BROKERS", Default: "127.0.0.1:9092", Doc: "seed brokers"})
	docs["ingest"] = append(docs["ingest"], config.Doc{Env: "HOOKLINE_SECRET_KEY", Required: true, Doc: "a | <b>"})
	docs["sender"] = append(docs["sender"], config.Doc{Env: "HOOKLINE_SECRET_KEY", Required: true, Doc: "a | <b>"})
	docs["devstack"] = []config.Doc{
		{Env: "HOOKLINE_SECRET_KEY", Doc: "generated"},
		{Env: "HOOKLINE_DATA_DIR", Default: ".hookline", Doc: "data"},
	}
	docs["hookctl"] = []config.Doc{{Env: "KAFKA_BROKERS", Default: "127.0.0.1:9092", Doc: "brokers"}}
	got := settingsTable(docs)
	want := "| variable | default | read by | what |\n|---|---|---|---|\n" +
		"| `KAFKA_BROKERS` | `127.0.0.1:9092` | every service, hookctl | seed brokers |\n" +
		"| `HOOKLINE_SECRET_KEY` | required (ingest, sender); none (devstack) | ingest, sender, devstack | a \\| &lt;b&gt; |\n" +
		"| `HOOKLINE_DATA_DIR` | `.hookline` | devstack | data |\n"
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	if _, err := replaceTable("no markers here", got); err == nil {
		t.Error("replaceTable without markers succeeded")
	}
	doc := "intro\n" + tableStart + "\nold\n" + tableEnd + "\nmore\n"
	if out, err := replaceTable(doc, "new\n"); err != nil || out != "intro\n"+tableStart+"\nnew\n"+tableEnd+"\nmore\n" {
		t.Errorf("replaceTable = %q, %v", out, err)
	}
}
