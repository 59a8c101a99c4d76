package embeddedpg

import (
	"archive/tar"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// cacheDir keeps the downloaded binaries between runs: HOOKLINE_CACHE,
// or the repository's .cache/ (as deploy/scripts do).
func cacheDir(t *testing.T) string {
	t.Helper()
	root := os.Getenv("HOOKLINE_CACHE")
	if root == "" {
		abs, err := filepath.Abs("../../.cache")
		if err != nil {
			t.Fatal(err)
		}
		root = abs
	}
	return filepath.Join(root, "embeddedpg")
}

// TestStartStopKeepsData: the server starts from nothing (binaries
// fetched from Maven Central once, cluster created), serves the hookline
// database, and after a stop and a start has kept what was written.
func TestStartStopKeepsData(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	dir := t.TempDir()
	if os.Geteuid() == 0 {
		// The server's unprivileged user must reach its folder; TempDir
		// makes it and its parent private.
		for _, d := range []string{dir, filepath.Dir(dir)} {
			if err := os.Chmod(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	cfg := Config{DataDir: filepath.Join(dir, "postgres"), CacheDir: cacheDir(t)}
	s, err := Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	defer func() {
		if !stopped {
			_ = s.Stop()
		}
	}()
	exec := func(url, sql string) {
		t.Helper()
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	exec(s.URL, "CREATE TABLE kept (v text); INSERT INTO kept VALUES ('hello')")
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	stopped = true
	if conn, err := pgx.Connect(ctx, s.URL); err == nil {
		conn.Close(ctx)
		t.Fatal("the server still answers after Stop")
	}

	s2, err := Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s2.Stop() }()
	conn, err := pgx.Connect(ctx, s2.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var v string
	if err := conn.QueryRow(ctx, "SELECT v FROM kept").Scan(&v); err != nil || v != "hello" {
		t.Errorf("after a restart: %q, %v; want the row written before", v, err)
	}
	var user string
	if err := conn.QueryRow(ctx, "SELECT current_setting('data_directory')").Scan(&user); err != nil || user != cfg.DataDir {
		t.Errorf("data directory %q, %v; want %q", user, err, cfg.DataDir)
	}
}

// TestRootNeedsAReachableFolder: as root the server runs as another user;
// a data folder that user cannot enter is refused with a message naming
// the folder, before anything is created.
func TestRootNeedsAReachableFolder(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("only root runs the server as another user")
	}
	private := t.TempDir() // 0700
	_, err := Start(context.Background(), Config{DataDir: filepath.Join(private, "postgres"), CacheDir: cacheDir(t)})
	if err == nil || !strings.Contains(err.Error(), "cannot enter "+filepath.Dir(private)) {
		t.Fatalf("start in a private folder: %v; want a refusal naming it", err)
	}
}

func TestUntarRefusesEscapes(t *testing.T) {
	cases := []struct {
		name string
		hdr  tar.Header
	}{
		{"dot-dot path", tar.Header{Name: "../evil", Typeflag: tar.TypeReg, Mode: 0o644}},
		{"absolute symlink", tar.Header{Name: "lib/x.so", Typeflag: tar.TypeSymlink, Linkname: "/etc/passwd"}},
		{"dot-dot symlink", tar.Header{Name: "lib/y.so", Typeflag: tar.TypeSymlink, Linkname: "../../y"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			tw := tar.NewWriter(&buf)
			if err := tw.WriteHeader(&tc.hdr); err != nil {
				t.Fatal(err)
			}
			tw.Close()
			dir := t.TempDir()
			if err := untar(tar.NewReader(&buf), dir); err == nil {
				t.Error("extracted an entry that leaves the folder")
			}
		})
	}
}
