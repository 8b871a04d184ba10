package client_test

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/natter-im/natter/client"
	"github.com/natter-im/natter/edge/protocol"
)

// TestUploadSendDownload: a file uploaded with the SDK, sent with
// WithAttachments, arrives with its metadata and is read by the other
// member whole and by range; a refused upload is an *Error with its code.
func TestUploadSendDownload(t *testing.T) {
	t.Parallel()
	dev := startDev(t)
	alice := dial(t, []string{wsURL(dev)}, "alice")
	bob := dial(t, []string{wsURL(dev)}, "bob")
	ctx := ctxT(t)
	conv, err := alice.CreateDirect(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	data := []byte(strings.Repeat("natter attachment ", 1000))
	a, err := alice.Upload(ctx, bytes.NewReader(data), -1, "text/plain", "notes.txt")
	if err != nil {
		t.Fatal(err)
	}
	if a.Size != int64(len(data)) || a.Type != "text/plain" || a.Name != "notes.txt" {
		t.Fatalf("uploaded %+v", a)
	}
	if _, err := alice.Send(ctx, conv.ID, "", client.WithAttachments(a)); err != nil {
		t.Fatal(err)
	}
	got := recv(t, bob, 1)[0]
	if len(got.Attachments) != 1 || got.Attachments[0] != a {
		t.Fatalf("bob got attachments %+v, want %+v", got.Attachments, a)
	}
	d, err := bob.Download(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(d.Body)
	d.Body.Close()
	if !bytes.Equal(b, data) || d.Type != "text/plain" || d.ETag == "" {
		t.Fatalf("download: %d bytes, %s, %q", len(b), d.Type, d.ETag)
	}
	d, err = bob.Download(ctx, a.ID, client.WithRange(18, 9))
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(d.Body)
	d.Body.Close()
	if string(b) != "natter at" || d.Size != int64(len(data)) || d.Length != 9 {
		t.Fatalf("range: %q, size %d, length %d", b, d.Size, d.Length)
	}
	var ce *client.Error
	if _, err := alice.Upload(ctx, strings.NewReader("\x89PNG\r\n\x1a\nnope"), -1, "application/x-unknown", "x"); !errors.As(err, &ce) || ce.Code != protocol.CodeUnsupportedType {
		t.Fatalf("upload of a type not allowed: %v", err)
	}
	carol := dial(t, []string{wsURL(dev)}, "carol")
	if _, err := carol.Download(ctx, a.ID); !errors.As(err, &ce) || ce.Code != protocol.CodeForbidden {
		t.Fatalf("carol's download: %v", err)
	}
}
