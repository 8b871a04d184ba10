package backup

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/natter-im/natter/jetstream/natsembed"
	"github.com/natter-im/natter/workers/store"
)

// Embedded is the embedded servers of a natter dev data dir (its nats/ and
// mongo/ folders, as natter dev lays them out), started without natter's
// roles: what "natter backup" and "natter restore" use when given --data
// instead of --nats-url and --mongo-uri. natter dev must not run on the
// same dir.
type Embedded struct {
	nats  *natsembed.Server
	store *store.Embedded
}

// StartEmbedded starts the embedded nats-server (on a free port of
// 127.0.0.1) and FerretDB of dataDir, creating them when the dir is new.
func StartEmbedded(ctx context.Context, dataDir string, log *slog.Logger) (*Embedded, error) {
	if log == nil {
		log = slog.Default()
	}
	ns, err := natsembed.Start(natsembed.Config{Port: -1, StoreDir: filepath.Join(dataDir, "nats")})
	if err != nil {
		return nil, fmt.Errorf("backup: embedded nats under %s: %w", dataDir, err)
	}
	st, err := store.StartEmbedded(ctx, filepath.Join(dataDir, "mongo"), log.With("component", "ferretdb"))
	if err != nil {
		ns.Stop()
		return nil, fmt.Errorf("backup: embedded store under %s: %w", dataDir, err)
	}
	return &Embedded{nats: ns, store: st}, nil
}

// NATSURL is the embedded nats-server's client URL.
func (e *Embedded) NATSURL() string { return e.nats.ClientURL() }

// MongoURI is the embedded store's URI.
func (e *Embedded) MongoURI() string { return e.store.URI() }

// Stop stops both servers (their files are synced on stop).
func (e *Embedded) Stop(ctx context.Context) error {
	err := e.store.Stop(ctx)
	e.nats.Stop()
	return err
}
