package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/hookline/hookline/pkg/stack"
)

// buildCommand builds every binary into -o (make build).
func buildCommand(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("hookstack build", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("o", "bin", "the folder the binaries go to")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: hookstack build [-o DIR]\n\nBuilds %s from the repository around the working directory.\n\n", binaryNames())
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	repo, err := stack.FindRepo(".")
	if err != nil {
		return err
	}
	return stack.Build(ctx, repo, *out)
}

// parseFlags parses a subcommand's flags: help exits 0, a mistake 2
// (the flag package has said what).
func parseFlags(fs *flag.FlagSet, args []string) error {
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		return exitCode(0)
	case err != nil:
		return exitCode(2)
	case fs.NArg() > 0:
		fmt.Fprintf(fs.Output(), "%s: unexpected %q\n", fs.Name(), fs.Arg(0))
		return exitCode(2)
	}
	return nil
}

func binaryNames() string {
	names := make([]string, len(stack.Binaries))
	for i, b := range stack.Binaries {
		names[i] = b.Name
	}
	return strings.Join(names, ", ")
}
