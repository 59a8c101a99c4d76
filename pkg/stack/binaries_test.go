package stack

import (
	"bufio"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestBinariesAreEveryProgram: every main package of the repository is in
// Binaries (each service's through Services), so that Build, the -h test
// and the settings table cover a new program without anyone remembering
// to add it elsewhere.
func TestBinariesAreEveryProgram(t *testing.T) {
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]bool{}
	err = filepath.WalkDir(repo, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || d.Name() == "node_modules") && path != repo {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		if isMain(t, path) {
			rel, _ := filepath.Rel(repo, filepath.Dir(path))
			found[filepath.ToSlash(rel)] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var listed []string
	for _, b := range Binaries {
		listed = append(listed, b.Dir)
	}
	slices.Sort(listed)
	var mains []string
	for dir := range found {
		mains = append(mains, dir)
	}
	slices.Sort(mains)
	if !slices.Equal(listed, mains) {
		t.Fatalf("Binaries lists %v; the main packages are %v", listed, mains)
	}
}

func isMain(t *testing.T, path string) bool {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if line := sc.Text(); strings.HasPrefix(line, "package ") {
			return line == "package main"
		}
	}
	return false
}
