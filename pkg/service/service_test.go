package service_test

import (
	"os"
	"runtime/debug"
	"testing"

	"github.com/hookline/hookline/pkg/service"
)

func TestDefaultGCPercent(t *testing.T) {
	prev := debug.SetGCPercent(100)
	defer debug.SetGCPercent(prev)

	t.Setenv("GOGC", "150") // restored after the test
	service.DefaultGCPercent(400)
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("with GOGC in the environment the percent became %d; it must be left alone", got)
	}

	if err := os.Unsetenv("GOGC"); err != nil {
		t.Fatal(err)
	}
	service.DefaultGCPercent(400)
	if got := debug.SetGCPercent(100); got != 400 {
		t.Errorf("without GOGC in the environment the percent is %d, want 400", got)
	}
}
