package testinfra

import (
	"os"

	"github.com/rs/zerolog"
)

func nopLogger() zerolog.Logger { return zerolog.Nop() }

// Logger is the log tests hand to the code under test: quiet unless
// HOOKLINE_TEST_LOG is set.
func Logger() zerolog.Logger {
	if os.Getenv("HOOKLINE_TEST_LOG") == "" {
		return zerolog.Nop()
	}
	return zerolog.New(zerolog.ConsoleWriter{Out: os.Stderr}).With().Timestamp().Logger()
}
