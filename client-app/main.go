// Command client-app serves the Tech Summary pages for browser users. It
// talks to the api-server over HTTP only.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/techlist/client-app/internal/apiclient"
	"github.com/techlist/client-app/internal/web"
	"github.com/techlist/techlist/config"
	"github.com/techlist/techlist/service"
)

func main() { service.Main("client-app", run) }

// settings is the client-app's configuration, read once at start.
type settings struct {
	port          int
	apiURL        *url.URL
	pageSize      int
	apiTimeout    time.Duration
	queuedTimeout time.Duration
	shutdown      time.Duration
	adminAddr     string
	maxConns      int
	maxStreams    int
}

func readSettings(env *config.Env) settings {
	cfg := settings{
		port:          env.Int("PORT", 3000, 0, 65535),
		apiURL:        env.URL("API_URL", "http://localhost:5000"),
		pageSize:      env.Int("PAGE_SIZE", 20, 1, 100),
		apiTimeout:    env.Duration("API_TIMEOUT", 10*time.Second),
		queuedTimeout: env.Duration("QUEUED_TIMEOUT", 30*time.Second),
		shutdown:      env.Duration("SHUTDOWN_TIMEOUT", 10*time.Second),
		adminAddr:     service.AdminAddr(env),
		maxConns:      service.MaxConns(env),
		maxStreams:    env.Int("EVENTS_MAX_CLIENTS", 512, 1, 1_000_000),
	}
	if cfg.apiTimeout == 0 {
		env.Fail("API_TIMEOUT", "0", "want a positive duration such as 10s")
	}
	if cfg.queuedTimeout == 0 {
		env.Fail("QUEUED_TIMEOUT", "0", "want a positive duration such as 30s")
	}
	service.StreamsFit(env, cfg.maxStreams, cfg.maxConns)
	return cfg
}

// run reads the configuration through getenv, serves until ctx is done, then
// shuts down gracefully and returns nil. args are the command-line arguments
// after the program name; logs go to stdout.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	flags := flag.NewFlagSet("client-app", flag.ContinueOnError)
	flags.SetOutput(stderr)
	healthcheck := flags.Bool("healthcheck", false, "probe the running server's /healthz on PORT and exit")
	flags.Usage = func() {
		fmt.Fprintln(stderr, "usage: client-app [-healthcheck]\n\n"+
			"Configured by environment variables (see example.env): PORT, API_URL, PAGE_SIZE, API_TIMEOUT, QUEUED_TIMEOUT, EVENTS_MAX_CLIENTS, MAX_CONNS, SHUTDOWN_TIMEOUT, ADMIN_ADDR, LOG_LEVEL, LOG_FORMAT.")
		flags.PrintDefaults()
	}
	if err := flags.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if flags.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q; client-app is configured by environment variables", flags.Args())
	}

	cfg, logger, tr, err := service.Configure(ctx, "client-app", getenv, stdout, readSettings)
	if err != nil {
		return err
	}
	if *healthcheck {
		return service.HealthCheck(cfg.port)
	}
	logger = logger.With("service", "client-app")
	defer tr.Flush(logger)

	// One client for every call to the api-server, each call bounded.
	hc := &http.Client{
		Timeout: cfg.apiTimeout,
		Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: 2 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:          64,
			MaxIdleConnsPerHost:   64,
			IdleConnTimeout:       90 * time.Second,
			ResponseHeaderTimeout: cfg.apiTimeout,
		},
	}
	hc.Transport = tr.Transport(hc.Transport) // a client span per call, carrying traceparent
	defer hc.CloseIdleConnections()
	api := apiclient.New(cfg.apiURL, hc)

	handler, err := web.NewServer(logger, api, web.Config{
		PageSize:      cfg.pageSize,
		QueuedTimeout: cfg.queuedTimeout,
		SubmitWait:    cfg.apiTimeout,
		MaxStreams:    cfg.maxStreams,
	})
	if err != nil {
		return err
	}
	defer handler.CloseStreams()
	// API_URL may carry a password; no log line shows it.
	logger.Info("starting", "api_url", cfg.apiURL.Redacted(), "page_size", cfg.pageSize,
		"api_timeout", cfg.apiTimeout, "queued_timeout", cfg.queuedTimeout)
	srv := service.NewHTTPServer(net.JoinHostPort("", strconv.Itoa(cfg.port)), tr.Handler(handler, "client-app"), logger)
	// The live event streams end when the server starts shutting down;
	// Shutdown would otherwise wait for them until its timeout.
	srv.RegisterOnShutdown(handler.CloseStreams)
	// A page may wait a whole API_TIMEOUT on the api-server before it is
	// written; a submission up to twice (it may first wait for an earlier
	// send of its form). (The event streams set their own deadline on each
	// write.)
	srv.WriteTimeout = max(srv.WriteTimeout, 2*cfg.apiTimeout+15*time.Second)
	return service.ListenAndServe(ctx, srv, cfg.adminAddr, cfg.maxConns, logger, cfg.shutdown)
}
