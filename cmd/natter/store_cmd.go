package main

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/natter-im/natter/internal/node"
	"github.com/natter-im/natter/workers/store"
)

// runStore runs the embedded MongoDB-compatible store (FerretDB, SQLite
// backend) as a process of its own, so several natter processes share it
// (natter cluster up). Production runs MongoDB instead.
func runStore(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("natter store", "natter store [flags]", stdout)
	var listen, dir string
	fs.String(&listen, "listen", "NATTER_STORE_LISTEN", "127.0.0.1:27017", "MongoDB wire-protocol listen address (port 0 = any free port)")
	fs.String(&dir, "dir", "NATTER_STORE_DIR", "./data/mongo", "directory of the SQLite files")
	var gf gcFlags
	gf.register(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	log, err := (&commonFlags{logLevel: "info", logFormat: "text"}).logger(stderr)
	if err != nil {
		return err
	}
	if err := gf.apply(log); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return &node.SettingError{Setting: "--listen (NATTER_STORE_LISTEN)", Err: err}
	}
	_ = ln.Close()
	// Signals are caught before the ready line, so a stop right after it
	// is a graceful one.
	sig := make(chan os.Signal, 2)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sig)
	e, err := store.StartEmbeddedAt(ctx, dir, listen, log)
	if err != nil {
		return &node.SettingError{Setting: "--dir (NATTER_STORE_DIR)", Err: err}
	}
	log.Info("natter ready", "mode", "store", "mongo", e.URI(), "dir", dir)

	select {
	case <-ctx.Done():
	case <-sig:
	}
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- e.Stop(sctx) }()
	select {
	case err := <-done:
		return err
	case <-sig:
		return errors.New("store: second signal: forcing exit")
	}
}
