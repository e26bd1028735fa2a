package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"
)

// The bare baseline is this program again, run as its own process (like
// the api-server it is set against) with -serve-bare: a plain net/http
// server answering every request with one fixed status, content type,
// Location and body, after reading the request body.

type bareConfig struct {
	status      *int
	contentType *string
	location    *string
	bodyFile    *string
}

func bareFlags(flags *flag.FlagSet) bareConfig {
	return bareConfig{
		status:      flags.Int("bare-status", http.StatusOK, "internal: the bare server's status"),
		contentType: flags.String("bare-content-type", "application/json", "internal: the bare server's Content-Type"),
		location:    flags.String("bare-location", "", "internal: the bare server's Location header, if any"),
		bodyFile:    flags.String("bare-body", "", "internal: file holding the bare server's body"),
	}
}

// serveBare serves on PORT until ctx ends (SIGTERM), then shuts down. It
// says where it listens on stdout, as the services do in their logs.
func serveBare(ctx context.Context, cfg bareConfig, stdout io.Writer) error {
	body, err := os.ReadFile(*cfg.bodyFile)
	if err != nil {
		return err
	}
	status, contentType, location := *cfg.status, *cfg.contentType, *cfg.location
	length := strconv.Itoa(len(body))
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		h := w.Header()
		h.Set("Content-Type", contentType)
		h.Set("Content-Length", length)
		if location != "" {
			h.Set("Location", location)
		}
		w.WriteHeader(status)
		w.Write(body)
	})
	return serveUntilDone(ctx, handler, stdout)
}

// serveUntilDone serves handler on 127.0.0.1:PORT until ctx ends (SIGTERM),
// then shuts down. It says where it listens on stdout, as the services do
// in their logs.
func serveUntilDone(ctx context.Context, handler http.Handler, stdout io.Writer) error {
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 5 * time.Second}
	ln, err := net.Listen("tcp", "127.0.0.1:"+os.Getenv("PORT"))
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "listening addr=%s\n", ln.Addr())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return err
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// startBare starts a bare server answering status with body (and location,
// when not empty); it answers once start returns.
func (w *world) startBare(ctx context.Context, name string, status int, body []byte, location string) (*process, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	f, err := w.bodyFile(body)
	if err != nil {
		return nil, err
	}
	args := []string{"-serve-bare", "-bare-status", strconv.Itoa(status), "-bare-body", f, "-bare-location", location}
	// It listens once it has said so: no need to poll it.
	return w.start(name, self, args, nil)
}

// bodyFile writes body to a new file of the run and returns its name.
func (w *world) bodyFile(body []byte) (string, error) {
	f, err := os.CreateTemp(w.tmp, "bare-body-")
	if err != nil {
		return "", err
	}
	if _, err := f.Write(body); err != nil {
		f.Close()
		return "", err
	}
	return f.Name(), f.Close()
}
