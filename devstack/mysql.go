package main

import (
	"fmt"
	"net"

	sqle "github.com/dolthub/go-mysql-server"
	"github.com/dolthub/go-mysql-server/memory"
	"github.com/dolthub/go-mysql-server/server"
	"github.com/dolthub/go-mysql-server/sql"
	"github.com/dolthub/go-mysql-server/sql/analyzer"
	"github.com/sirupsen/logrus"
)

// mysqlServer is a running in-memory MySQL-protocol server.
type mysqlServer struct {
	srv    *server.Server
	engine *sqle.Engine
	addr   string
	done   chan struct{}
}

// startMySQL starts go-mysql-server on addr with an in-memory database
// provider (databases are created by the clients, as the services do) and
// one account, root with an empty password. With verbose, the server's own
// log (connections, failed statements) goes to stderr.
func startMySQL(addr string, verbose bool) (*mysqlServer, error) {
	// The library logs through logrus (one logger per process). Its errors
	// are the clients' errors, which the clients see and report (the first
	// connection of a service to a database it is about to create, say), so
	// they are shown only when asked for.
	if verbose {
		logrus.SetLevel(logrus.InfoLevel)
	} else {
		logrus.SetLevel(logrus.PanicLevel)
	}

	// Listen first, ourselves: a taken port fails here, at once, and the
	// library's "is something there?" probe is skipped.
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	pro := memory.NewDBProvider()
	engine := sqle.New(analyzer.NewDefault(pro), &sqle.Config{IncludeRootAccount: true})
	srv, err := server.NewServer(server.Config{Protocol: "tcp", Address: ln.Addr().String(), Listener: ln},
		engine, sql.NewContext, memory.NewSessionBuilder(pro), nil)
	if err != nil {
		ln.Close()
		engine.Close()
		return nil, fmt.Errorf("new server: %w", err)
	}
	m := &mysqlServer{srv: srv, engine: engine, addr: ln.Addr().String(), done: make(chan struct{})}
	go func() {
		defer close(m.done)
		srv.Start() // returns when the listener is closed
	}()
	return m, nil
}

// Addr is where the server listens.
func (m *mysqlServer) Addr() string { return m.addr }

// Close stops accepting, waits for the accept loop to end, and releases
// the engine.
func (m *mysqlServer) Close() {
	m.srv.Close()
	<-m.done
	m.engine.Close()
}
