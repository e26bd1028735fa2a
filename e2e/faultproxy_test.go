package e2e

import (
	"fmt"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/techlist/techlist/testenv"
)

// faultProxy is a TCP proxy, in this process, between the services and
// Redis or MySQL. Cut closes its listener and every connection through it,
// as when the network to the server fails; Restore listens again on the
// same address, so the services reconnect to what they were told.
type faultProxy struct {
	proxy *toxiproxy.Proxy
	Addr  string // host:port the services dial
	Host  string
	Port  int
	Cuts  int // how many times it was cut
}

// newFaultProxy starts a proxy named name to upstream on a free port of
// 127.0.0.1. It is stopped when the test ends, after the services (which
// were started later, so their cleanup runs first).
func newFaultProxy(t *testing.T, name, upstream string) *faultProxy {
	t.Helper()
	srv := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), zerolog.Nop())
	port := testenv.FreePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	p := toxiproxy.NewProxy(srv, name, addr, upstream)
	if err := p.Start(); err != nil {
		t.Fatalf("start the %s proxy on %s: %v", name, addr, err)
	}
	t.Cleanup(p.Stop)
	return &faultProxy{proxy: p, Addr: addr, Host: "127.0.0.1", Port: port}
}

// Cut refuses new connections and closes the open ones.
func (f *faultProxy) Cut() {
	f.proxy.Stop()
	f.Cuts++
}

// Restore accepts connections again on the same address. Another program
// may have taken the port in the meantime, so it retries for a while.
func (f *faultProxy) Restore(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := f.proxy.Start()
		if err == nil || err == toxiproxy.ErrProxyAlreadyStarted {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("restore the %s proxy on %s: %v", f.proxy.Name, f.Addr, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
