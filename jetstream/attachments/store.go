package attachments

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-im/natter/jetstream/subjects"
)

// Store keeps attachment bytes by object name. Implementations stream: no
// call holds a whole object in memory.
type Store interface {
	// Put stores r's bytes, read to EOF, as name (replacing an object of
	// that name) and returns how many it stored. size is the length when
	// known, -1 when not. An error leaves nothing stored under name that
	// was not there before (a failed replace may leave the old object).
	Put(ctx context.Context, name string, r io.Reader, size int64, contentType string) (int64, error)
	// Get returns a reader of n bytes of name from byte off (n < 0: to the
	// end). The caller closes it. [ErrNotFound] when there is no such
	// object.
	Get(ctx context.Context, name string, off, n int64) (io.ReadCloser, error)
	// Delete removes name; removing a missing object is no error.
	Delete(ctx context.Context, name string) error
}

// ObjectStore is the JetStream object store (bucket
// subjects.ObjectAttach), replicated like the streams.
type ObjectStore struct {
	obs jetstream.ObjectStore
}

var _ Store = (*ObjectStore)(nil)

// OpenObjectStore opens the ATTACHBLOBS object store (streams.Ensure
// creates it).
func OpenObjectStore(ctx context.Context, js jetstream.JetStream) (*ObjectStore, error) {
	obs, err := js.ObjectStore(ctx, subjects.ObjectAttach)
	if err != nil {
		return nil, fmt.Errorf("attachments: object store %s: %w", subjects.ObjectAttach, err)
	}
	return &ObjectStore{obs: obs}, nil
}

// chunkSize is the object store's chunk: nats.go publishes one message per
// Read, so reads are gathered into whole chunks.
const chunkSize = 128 << 10

// Put implements [Store].
func (o *ObjectStore) Put(ctx context.Context, name string, r io.Reader, _ int64, contentType string) (int64, error) {
	cr := &countReader{r: r}
	_, err := o.obs.Put(ctx, jetstream.ObjectMeta{Name: name, Headers: map[string][]string{"Content-Type": {contentType}},
		Opts: &jetstream.ObjectMetaOptions{ChunkSize: chunkSize}}, &fullReader{r: cr})
	if err != nil {
		return 0, fmt.Errorf("attachments: put %s: %w", name, err)
	}
	return cr.n, nil
}

// Get implements [Store]. The object store has no ranged read: the bytes
// before off are read and dropped.
func (o *ObjectStore) Get(ctx context.Context, name string, off, n int64) (io.ReadCloser, error) {
	res, err := o.obs.Get(ctx, name)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return nil, fmt.Errorf("attachments: get %s: %w", name, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("attachments: get %s: %w", name, err)
	}
	if off > 0 {
		if _, err := io.CopyN(io.Discard, res, off); err != nil {
			res.Close()
			return nil, fmt.Errorf("attachments: get %s: skip to %d: %w", name, off, err)
		}
	}
	if n < 0 {
		return res, nil
	}
	return limitCloser{io.LimitReader(res, n), res}, nil
}

// Delete implements [Store].
func (o *ObjectStore) Delete(ctx context.Context, name string) error {
	err := o.obs.Delete(ctx, name)
	if err != nil && !errors.Is(err, jetstream.ErrObjectNotFound) {
		return fmt.Errorf("attachments: delete %s: %w", name, err)
	}
	return nil
}

type limitCloser struct {
	io.Reader
	io.Closer
}

type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// fullReader fills each Read's buffer (until EOF or an error), so that a
// reader that returns a few KiB at a time still makes whole chunks.
type fullReader struct{ r io.Reader }

func (f *fullReader) Read(p []byte) (int, error) {
	n, err := io.ReadFull(f.r, p)
	if err == io.ErrUnexpectedEOF {
		err = io.EOF
	}
	if n > 0 && err == io.EOF {
		// The bytes first; EOF comes with the next Read.
		return n, nil
	}
	return n, err
}
