package service

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/techlist/techlist/config"
)

// Run is a service's run function: everything but the process around it.
type Run func(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error

// Main is the whole of each service's main: it stops on SIGINT or SIGTERM
// (what Ctrl-C and docker stop send), reads .env beside the real
// environment, calls run with standard output buffered (see logOutput),
// and exits 1 with the error's one line.
func Main(name string, run Run) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	getenv, err := config.Getenv(os.LookupEnv, ".env")
	if err == nil {
		stdout, flush := logOutput(os.Stdout)
		err = run(ctx, os.Args[1:], getenv, stdout, os.Stderr)
		flush()
	}
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, name+":", err)
		os.Exit(1)
	}
}

// logOutput returns where run writes its logs, and what to call when it
// returns. Output to a terminal is a person reading: it is written as it
// comes, and stays the *os.File it is, so the logger sees a terminal and
// picks text. Output to anything else (a pipe, a file, a container's log)
// is buffered (see logBuffer).
func logOutput(f *os.File) (io.Writer, func()) {
	if config.IsTerminal(f) {
		return f, func() {}
	}
	b := newLogBuffer(f, 100*time.Millisecond)
	return b, func() { b.Close() }
}
