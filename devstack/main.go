// Command devstack runs an embedded development stack: an in-process
// Redis-protocol server (miniredis) and MySQL-protocol server
// (go-mysql-server, in memory), so that `make dev` works on a machine with
// only Go. Its data lives only as long as the process runs. It is for
// development only: never for production, and it listens on loopback
// addresses only.
//
// scripts/dev.sh starts it when nothing answers at the configured addresses.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), stopSignals()...)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "devstack:", err)
		os.Exit(1)
	}
}

// stopSignals returns the signals that stop devstack: SIGTERM, and SIGINT
// unless it was ignored when devstack started. scripts/dev.sh runs devstack
// in the background, where the shell ignores SIGINT, so that Ctrl-C reaches
// only the services: they finish their work against the stack, and then
// the script stops the stack with SIGTERM. Run by hand in a terminal,
// Ctrl-C stops it.
func stopSignals() []os.Signal {
	if signal.Ignored(os.Interrupt) {
		return []os.Signal{syscall.SIGTERM}
	}
	return []os.Signal{os.Interrupt, syscall.SIGTERM}
}

// off, as an address, means "do not start this server".
const off = "off"

// settings is what run reads from its flags and environment.
type settings struct {
	redisAddr string // "" when not started
	mysqlAddr string // "" when not started
	verbose   bool   // show the MySQL server's own log
}

func readSettings(args []string, getenv func(string) string, stderr io.Writer) (settings, error) {
	flags := flag.NewFlagSet("devstack", flag.ContinueOnError)
	flags.SetOutput(stderr)
	flags.Usage = func() {
		fmt.Fprintln(stderr, "usage: devstack [-redis host:port|off] [-mysql host:port|off] [-v]")
		fmt.Fprintln(stderr, "Runs an in-memory Redis and MySQL for development. Data lives only while it runs.")
		flags.PrintDefaults()
	}
	redisAddr := flags.String("redis", envOr(getenv, "DEVSTACK_REDIS_ADDR", "127.0.0.1:6379"),
		"address of the embedded Redis, or off (env DEVSTACK_REDIS_ADDR)")
	mysqlAddr := flags.String("mysql", envOr(getenv, "DEVSTACK_MYSQL_ADDR", "127.0.0.1:3306"),
		"address of the embedded MySQL, or off (env DEVSTACK_MYSQL_ADDR)")
	verbose := flags.Bool("v", false, "also show the embedded MySQL server's own log (connections, failed statements)")
	if err := flags.Parse(args); err != nil {
		return settings{}, err
	}
	if flags.NArg() > 0 {
		return settings{}, fmt.Errorf("unexpected argument %q", flags.Arg(0))
	}
	s := settings{verbose: *verbose}
	var errs []error
	for _, a := range []struct {
		name string
		val  string
		dst  *string
	}{{"-redis", *redisAddr, &s.redisAddr}, {"-mysql", *mysqlAddr, &s.mysqlAddr}} {
		v := strings.TrimSpace(a.val)
		if strings.EqualFold(v, off) {
			continue
		}
		if err := checkLoopback(v); err != nil {
			errs = append(errs, fmt.Errorf("%s=%q: %w", a.name, v, err))
			continue
		}
		*a.dst = v
	}
	if err := errors.Join(errs...); err != nil {
		return settings{}, err
	}
	if s.redisAddr == "" && s.mysqlAddr == "" {
		return settings{}, errors.New("both -redis and -mysql are off: nothing to run")
	}
	return s, nil
}

func envOr(getenv func(string) string, name, def string) string {
	if v := strings.TrimSpace(getenv(name)); v != "" {
		return v
	}
	return def
}

// checkLoopback accepts host:port where host is a loopback address or
// localhost. The embedded servers have no passwords (Redis) or root with an
// empty one (MySQL): they must not be reachable from other machines.
func checkLoopback(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("want host:port: %w", err)
	}
	if port == "" {
		return errors.New("want host:port with a port")
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return errors.New("the embedded stack listens on loopback addresses only (127.0.0.1, ::1, localhost)")
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := readSettings(args, getenv, stderr)
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(stdout, nil)).With("service", "devstack")

	// Each server listens before anything is logged: a taken address (a
	// real server already there, say) fails the start at once, and devstack
	// never shares a port with another server.
	var addrs endpoints
	var closers []func()
	defer func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}()
	if cfg.redisAddr != "" {
		r, err := startRedis(cfg.redisAddr)
		if err != nil {
			return fmt.Errorf("start the embedded Redis on %s: %w%s", cfg.redisAddr, err, inUseHint(err))
		}
		addrs.Redis = r.Addr()
		closers = append(closers, func() {
			r.Close()
			logger.Info("stopped the embedded Redis", "addr", addrs.Redis)
		})
	}
	if cfg.mysqlAddr != "" {
		m, err := startMySQL(cfg.mysqlAddr, cfg.verbose)
		if err != nil {
			return fmt.Errorf("start the embedded MySQL on %s: %w%s", cfg.mysqlAddr, err, inUseHint(err))
		}
		addrs.MySQL = m.Addr()
		closers = append(closers, func() {
			m.Close()
			logger.Info("stopped the embedded MySQL", "addr", addrs.MySQL)
		})
	}
	warn(logger, addrs)
	<-ctx.Done()
	logger.Warn("stopping the embedded development stack: its data is gone")
	return nil
}

// inUseHint explains an address already in use.
func inUseHint(err error) string {
	if errors.Is(err, syscall.EADDRINUSE) {
		return " (a server already listens there: use it, or give devstack another address)"
	}
	return ""
}

// endpoints says where the started servers listen; empty for one not started.
type endpoints struct {
	Redis string
	MySQL string
}

// warn logs, first and loudly, what this stack is and is not.
func warn(logger *slog.Logger, a endpoints) {
	logger.Warn("**************************************************************************")
	logger.Warn("EMBEDDED DEVELOPMENT STACK: in-memory stand-ins, not real servers")
	if a.Redis != "" {
		logger.Warn("embedded Redis (miniredis) is listening", "addr", a.Redis)
	}
	if a.MySQL != "" {
		logger.Warn("embedded MySQL (go-mysql-server, in memory) is listening", "addr", a.MySQL, "user", "root", "password", "(empty)")
	}
	logger.Warn("DATA LIVES ONLY WHILE THIS PROCESS (make dev) RUNS: stopping it loses everything")
	logger.Warn("NOT FOR PRODUCTION: no persistence, no passwords, partial compatibility")
	logger.Warn("**************************************************************************")
}
