// Package kvbatch reads the last entries of many keys of a KV bucket in
// one request: a batched direct get ({"multi_last": [filters]}) on the
// bucket's stream, answered with one message per matching subject and
// ended by a status message (204 or 404: nothing more). The CURSORS and
// SUMMARIES buckets and the edge's presence reads use it, so a page of a
// user's conversations or a storm of presence subscribes costs one round
// trip per batch, not one per key.
package kvbatch

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ErrDirectGet is a batched read answered with an error status.
var ErrDirectGet = errors.New("kvbatch: direct get failed")

// DefaultTimeout bounds a MultiLast whose ctx has no deadline.
const DefaultTimeout = 5 * time.Second

// MultiLast sends one batched direct get to directGet (the bucket stream's
// $JS.API.DIRECT.GET.<stream> subject) for the last entry of every subject
// filters match and hands each message to fn, in the server's order. The
// replies come over one Mux per connection (made at the first call), not a
// subscription per request: in a reconnect storm the reads of every
// session's sync would otherwise each subscribe and unsubscribe (a
// goroutine, two protocol messages and two walks of the server's
// subscription cache per read).
func MultiLast(ctx context.Context, nc *nats.Conn, directGet string, filters []string, fn func(*nats.Msg)) error {
	m, err := connMux(nc)
	if err != nil {
		return err
	}
	return m.MultiLast(ctx, nc, directGet, filters, fn)
}

// muxes holds the Mux of every connection MultiLast was called on
// (*nats.Conn -> *Mux); those of closed connections are dropped when the
// next one is made.
var (
	muxes   sync.Map
	muxesMu sync.Mutex // makes one Mux per connection
)

// connMux returns nc's shared Mux, made at the first call (again if its
// subscription has gone, as after a drain).
func connMux(nc *nats.Conn) (*Mux, error) {
	if v, ok := muxes.Load(nc); ok {
		if m := v.(*Mux); m.sub.IsValid() {
			return m, nil
		}
	}
	muxesMu.Lock()
	defer muxesMu.Unlock()
	if v, ok := muxes.Load(nc); ok {
		if m := v.(*Mux); m.sub.IsValid() {
			return m, nil
		}
	}
	m, err := NewMux(nc)
	if err != nil {
		return nil, err
	}
	muxes.Range(func(k, _ any) bool {
		if k.(*nats.Conn).IsClosed() {
			muxes.Delete(k)
		}
		return true
	})
	muxes.Store(nc, m)
	return m, nil
}

// DirectGet is the direct get subject of stream ($JS.API.DIRECT.GET.<stream>)
// under the JetStream API prefix o names, derived as nats.go derives it
// (a domain, else the API prefix, else $JS.API.).
func DirectGet(o jetstream.JetStreamOptions, stream string) string {
	p := jetstream.DefaultAPIPrefix
	switch {
	case o.Domain != "":
		p = "$JS." + o.Domain + ".API."
	case o.APIPrefix != "":
		p = o.APIPrefix
	}
	if !strings.HasSuffix(p, ".") {
		p += "."
	}
	return p + "DIRECT.GET." + stream
}

// BucketDirectGet is DirectGet of the stream behind the KV bucket.
func BucketDirectGet(o jetstream.JetStreamOptions, bucket string) string {
	return DirectGet(o, "KV_"+bucket)
}
