// Command otto-ferretdb runs an embedded FerretDB (SQLite backend) that speaks
// the MongoDB wire protocol. Otto's tests and `npm run mongodb:local` use it as
// a real MongoDB-compatible server where no MongoDB binary can be installed.
//
// Usage:
//
//	otto-ferretdb -listen 127.0.0.1:27017 -data ./data/ferretdb
//
// Once the listener is bound it prints exactly one line, "ready <addr>", to
// stdout. FerretDB's own logs go to stderr at warn level or above. SIGINT and
// SIGTERM shut it down cleanly (connections closed, SQLite databases closed).
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/FerretDB/FerretDB/ferretdb"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:27017", "TCP address to listen on")
	data := flag.String("data", "", "directory for SQLite database files (required)")
	flag.Parse()

	if err := run(*listen, *data); err != nil {
		fmt.Fprintln(os.Stderr, "otto-ferretdb:", err)
		os.Exit(1)
	}
}

func run(listen, data string) error {
	if data == "" {
		return fmt.Errorf("-data is required")
	}

	dir, err := filepath.Abs(data)
	if err != nil {
		return err
	}

	if err = os.MkdirAll(dir, 0o755); err != nil {
		return err
	}

	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	slog.SetDefault(logger)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	// New binds the listener, so the server accepts connections from here on
	// (they are served once Run starts, which follows immediately).
	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: listen},
		Logger:    logger,
		Handler:   "sqlite",
		SQLiteURL: "file:" + dir + "/",
	})
	if err != nil {
		return err
	}

	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()

	u, err := url.Parse(f.MongoDBURI())
	if err != nil {
		stop()
		<-done

		return err
	}

	fmt.Printf("ready %s\n", u.Host)

	return <-done
}
