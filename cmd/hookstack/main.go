// Command hookstack is pkg/stack on the command line: it runs Hookline's
// services as processes against a Kafka and Redis of yours, under a topic
// prefix, consumer groups and ports of their own, until SIGINT or SIGTERM,
// then stops them and deletes what they created. The deploy tests start
// the services through it; it also builds every binary (make build) and
// lists the settings every binary reads (the README's table).
//
//	hookstack [settings as flags]     run the services (see -h)
//	hookstack build [-o DIR]          build every binary into DIR
//	hookstack settings [-bin DIR] [-json | -readme FILE]
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

const usage = `hookstack: run Hookline's services against your Kafka and Redis

Usage:
  hookstack [-name value ...]   run the services until SIGINT or SIGTERM, each
                                on a free ops port, ingest's API on a free port
                                (or HOOKLINE_HTTP_ADDR), under a fresh topic
                                prefix; once all are ready, write where they
                                listen as export lines (HOOKLINE_API_URL,
                                HOOKLINE_TOPIC_PREFIX, HOOKLINE_<SERVICE>_OPS_ADDR)
                                to HOOKLINE_STACK_ENV_FILE or stdout. On exit it
                                deletes the prefix's topics and groups. Every
                                other setting in the environment reaches the
                                services as it is (e.g. HOOKLINE_SMTP_URL).
  hookstack build [-o DIR]      build every Hookline binary into DIR (bin)
  hookstack settings [-bin DIR] [-json | -readme FILE]
                                every setting every binary reads, from each
                                one's -h: the README's table (markdown), JSON,
                                or the table rewritten in place in FILE

`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		var code exitCode
		if errors.As(err, &code) {
			os.Exit(int(code))
		}
		fmt.Fprintln(os.Stderr, "hookstack:", err)
		os.Exit(1)
	}
}

// exitCode ends hookstack with a code and nothing more to say: 0 after
// help, 2 after a usage mistake already reported.
type exitCode int

func (c exitCode) Error() string { return fmt.Sprintf("exit %d", int(c)) }

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "build":
			return buildCommand(ctx, args[1:], stderr)
		case "settings":
			return settingsCommand(ctx, args[1:], stdout, stderr)
		case "run":
			args = args[1:]
		}
	}
	return runCommand(ctx, args, stdout, stderr)
}
