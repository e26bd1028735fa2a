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
// environment, calls run with standard output buffered (see logBuffer),
// and exits 1 with the error's one line.
func Main(name string, run Run) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	getenv, err := config.Getenv(os.LookupEnv, ".env")
	if err == nil {
		stdout := newLogBuffer(os.Stdout, 100*time.Millisecond)
		err = run(ctx, os.Args[1:], getenv, stdout, os.Stderr)
		stdout.Close()
	}
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, name+":", err)
		os.Exit(1)
	}
}
