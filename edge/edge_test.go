package edge

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-im/natter/edge/auth"
)

// TestNewErrors: New says which kind of failure stopped it, so that the
// process reports a bad token setting as one (ErrAuthSettings) and a mesh
// failure (here: JetStream without the cursors bucket) as what it is.
func TestNewErrors(t *testing.T) {
	t.Parallel()
	_, nc := testNATS(t)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	key := auth.Key{ID: "k1", Alg: auth.AlgHS256, Secret: []byte("0123456789abcdef0123456789abcdef")}

	_, err = New(ctx, Config{Auth: auth.Config{Keys: []auth.Key{key}, Leeway: -time.Second}}, Deps{NC: nc, JS: js})
	if !errors.Is(err, ErrAuthSettings) {
		t.Errorf("bad token settings: %v, want ErrAuthSettings", err)
	}
	_, err = New(ctx, Config{Auth: auth.Config{Keys: []auth.Key{key}}}, Deps{NC: nc, JS: js})
	if err == nil || errors.Is(err, ErrAuthSettings) || !errors.Is(err, jetstream.ErrBucketNotFound) {
		t.Errorf("no cursors bucket: %v, want a bucket-not-found error that is not ErrAuthSettings", err)
	}
}
