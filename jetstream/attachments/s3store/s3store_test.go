package s3store_test

import (
	"net/http/httptest"
	"testing"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/natter-im/natter/jetstream/attachments/s3store"
	"github.com/natter-im/natter/jetstream/attachments/storetest"
)

// TestS3Store runs the store suite against gofakes3, an S3 server in the
// test process (real HTTP, real signatures; no mock of the client).
func TestS3Store(t *testing.T) {
	t.Parallel()
	backend := s3mem.New()
	if err := backend.CreateBucket("natter"); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gofakes3.New(backend).Server())
	t.Cleanup(srv.Close)
	st, err := s3store.New(s3store.Config{Endpoint: srv.URL, Bucket: "natter", Prefix: "att/", AccessKey: "key", SecretKey: "secret", PathStyle: true})
	if err != nil {
		t.Fatal(err)
	}
	storetest.Run(t, st)
}

func TestS3StoreConfig(t *testing.T) {
	t.Parallel()
	for _, c := range []s3store.Config{{Endpoint: "", Bucket: "b"}, {Endpoint: "ftp://x", Bucket: "b"}, {Endpoint: "http://127.0.0.1:9000"}} {
		if _, err := s3store.New(c); err == nil {
			t.Errorf("New(%+v): no error", c)
		}
	}
}
