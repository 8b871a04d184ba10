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
// filters match and hands each message to fn, in the server's order.
func MultiLast(ctx context.Context, nc *nats.Conn, directGet string, filters []string, fn func(*nats.Msg)) error {
	m, err := NewMux(nc) // a subscription of its own, for this request
	if err != nil {
		return err
	}
	defer func() { _ = m.Close() }()
	return m.MultiLast(ctx, nc, directGet, filters, fn)
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
