package backup

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// FormatVersion is the manifest format this package writes and reads.
const FormatVersion = 1

// ManifestName is the manifest's file name inside a backup's folder.
const ManifestName = "manifest.json"

// Kinds of backup.
const (
	KindFull        = "full"
	KindIncremental = "incremental"
)

// Manifest describes one backup. It is written last: a folder without one
// is an unfinished backup and is ignored.
type Manifest struct {
	Format int    `json:"format"`
	ID     string `json:"id"`
	Kind   string `json:"kind"`
	// Parent is the backup an incremental continues ("" for a full one).
	Parent string `json:"parent,omitempty"`
	// Version is the natter version that wrote it.
	Version  string    `json:"natter_version"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	// Streams are every stream, KV bucket and object store backed up.
	Streams []StreamEntry `json:"streams"`
	// Consumers are the durable consumers of those streams.
	Consumers []ConsumerEntry `json:"consumers"`
	// Collections are every collection of the MongoDB database, in full.
	Collections []CollectionEntry `json:"collections"`
	// Database is the MongoDB database name.
	Database string `json:"database"`
}

// StreamEntry is one stream in a [Manifest].
type StreamEntry struct {
	Name string `json:"name"`
	// Kind: "stream", "bucket" (KV) or "objects" (object store).
	Kind   string                 `json:"kind"`
	Config jetstream.StreamConfig `json:"config"`
	// FromSeq is the first sequence this backup asked for: 1 in a full
	// backup, the parent's LastSeq + 1 in an incremental one.
	FromSeq uint64 `json:"from_seq"`
	// FirstSeq and LastSeq are the stream's first and last sequences at
	// the cut; the file holds the messages in [max(FromSeq, FirstSeq),
	// LastSeq] that the stream still had when they were read.
	FirstSeq uint64 `json:"first_seq"`
	LastSeq  uint64 `json:"last_seq"`
	// Count of messages in the file, Bytes its size, SHA256 its digest.
	Count  uint64 `json:"count"`
	File   string `json:"file"`
	Bytes  int64  `json:"bytes"`
	SHA256 string `json:"sha256"`
}

// ConsumerEntry is a durable consumer in a [Manifest].
type ConsumerEntry struct {
	Stream string                   `json:"stream"`
	Config jetstream.ConsumerConfig `json:"config"`
	// AckFloor is the stream sequence below which (inclusive) the consumer
	// had acknowledged everything when the backup began. A restored
	// consumer starts at AckFloor + 1.
	AckFloor uint64 `json:"ack_floor"`
}

// CollectionEntry is a MongoDB collection in a [Manifest]: its documents
// as concatenated BSON (mongodump's .bson layout).
type CollectionEntry struct {
	Name   string `json:"name"`
	Count  uint64 `json:"count"`
	File   string `json:"file"`
	Bytes  int64  `json:"bytes"`
	SHA256 string `json:"sha256"`
}

// Stream kinds in a [StreamEntry].
const (
	StreamKindStream  = "stream"
	StreamKindBucket  = "bucket"
	StreamKindObjects = "objects"
)

func (m *Manifest) stream(name string) *StreamEntry {
	for i := range m.Streams {
		if m.Streams[i].Name == name {
			return &m.Streams[i]
		}
	}
	return nil
}

// ReadManifest reads the manifest of backup id from t.
func ReadManifest(ctx context.Context, t Target, id string) (*Manifest, error) {
	r, err := t.Open(ctx, path.Join(id, ManifestName))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w: %s in %s", ErrNoBackup, id, t)
		}
		return nil, err
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("backup: read %s/%s: %w", id, ManifestName, err)
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%w: %s/%s: %v", ErrCorrupt, id, ManifestName, err)
	}
	if m.Format != FormatVersion {
		return nil, fmt.Errorf("%w: %s/%s: format %d, this natter reads %d", ErrCorrupt, id, ManifestName, m.Format, FormatVersion)
	}
	if m.ID != id {
		return nil, fmt.Errorf("%w: %s/%s: names backup %q", ErrCorrupt, id, ManifestName, m.ID)
	}
	files := make([]string, 0, len(m.Streams)+len(m.Collections))
	for _, e := range m.Streams {
		files = append(files, e.File)
	}
	for _, c := range m.Collections {
		files = append(files, c.File)
	}
	for _, f := range files {
		if !strings.HasPrefix(f, id+"/") || strings.Contains(f, "..") {
			return nil, fmt.Errorf("%w: %s/%s: file %q is outside the backup", ErrCorrupt, id, ManifestName, f)
		}
	}
	return &m, nil
}

// List returns the ids of the finished backups in t (those with a
// manifest), oldest first (ids sort by time).
func List(ctx context.Context, t Target) ([]string, error) {
	names, err := t.List(ctx, "")
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, n := range names {
		if dir, file := path.Split(n); file == ManifestName && strings.Count(dir, "/") == 1 {
			ids = append(ids, strings.TrimSuffix(dir, "/"))
		}
	}
	return ids, nil
}

// Latest returns the id of the newest finished backup in t.
func Latest(ctx context.Context, t Target) (string, error) {
	ids, err := List(ctx, t)
	if err != nil {
		return "", err
	}
	if len(ids) == 0 {
		return "", fmt.Errorf("%w in %s", ErrNoBackup, t)
	}
	return ids[len(ids)-1], nil
}

// Chain reads the manifests from the full backup to id (id last; "" means
// the newest backup), checking that each incremental continues its parent.
func Chain(ctx context.Context, t Target, id string) ([]*Manifest, error) {
	if id == "" {
		var err error
		if id, err = Latest(ctx, t); err != nil {
			return nil, err
		}
	}
	var chain []*Manifest
	for {
		m, err := ReadManifest(ctx, t, id)
		if err != nil {
			if len(chain) > 0 && errors.Is(err, ErrNoBackup) {
				return nil, fmt.Errorf("%w: %s names parent %s, which is missing", ErrChain, chain[0].ID, id)
			}
			return nil, err
		}
		chain = append([]*Manifest{m}, chain...)
		if m.Kind == KindFull {
			break
		}
		if m.Kind != KindIncremental || m.Parent == "" {
			return nil, fmt.Errorf("%w: %s/%s: kind %q without a parent", ErrCorrupt, m.ID, ManifestName, m.Kind)
		}
		if len(chain) > 10_000 {
			return nil, fmt.Errorf("%w: more than 10,000 backups since the full one", ErrChain)
		}
		id = m.Parent
	}
	for i := 1; i < len(chain); i++ {
		if err := continues(chain[i-1], chain[i]); err != nil {
			return nil, err
		}
	}
	return chain, nil
}

// continues checks that every stream of m that its parent p had starts
// right after p's last sequence.
func continues(p, m *Manifest) error {
	for _, s := range m.Streams {
		ps := p.stream(s.Name)
		if ps == nil {
			if s.FromSeq != 1 {
				return fmt.Errorf("%w: %s: stream %s starts at %d but parent %s does not have it", ErrChain, m.ID, s.Name, s.FromSeq, p.ID)
			}
			continue
		}
		if s.FromSeq != ps.LastSeq+1 {
			return fmt.Errorf("%w: %s: stream %s starts at sequence %d, parent %s ends at %d", ErrChain, m.ID, s.Name, s.FromSeq, p.ID, ps.LastSeq)
		}
	}
	return nil
}

func marshalManifest(m *Manifest) ([]byte, error) {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("backup: manifest: %w", err)
	}
	return append(b, '\n'), nil
}

func bytesReader(b []byte) io.Reader { return strings.NewReader(string(b)) }
