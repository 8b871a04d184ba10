package edge

import (
	"testing"

	"github.com/natter-im/natter/edge/protocol"
	"github.com/natter-im/natter/jetstream/convapi"
	"github.com/natter-im/natter/jetstream/delivery"
)

// TestReceiptBoundsAgree: the bounds the protocol states are the ones the
// conversations service applies.
func TestReceiptBoundsAgree(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name           string
		proto, service int
	}{
		{"MaxReceiptMembers", protocol.MaxReceiptMembers, convapi.MaxReceiptMembers},
		{"DefaultReceiptsLimit", protocol.DefaultReceiptsLimit, convapi.DefaultReceiptsLimit},
		{"MaxReceiptsLimit", protocol.MaxReceiptsLimit, convapi.MaxReceiptsLimit},
	} {
		if c.proto != c.service {
			t.Errorf("%s: protocol %d, conversations service %d", c.name, c.proto, c.service)
		}
	}
}

// TestReadSignalFrame: a read signal's body becomes the read push clients
// decode; a malformed one is refused.
func TestReadSignalFrame(t *testing.T) {
	t.Parallel()
	p, err := delivery.ReadPayload(delivery.Read{Conv: "g_1", User: "bob", Seq: 42})
	if err != nil {
		t.Fatal(err)
	}
	r, err := delivery.ParseRead(p.Data)
	if err != nil {
		t.Fatal(err)
	}
	f, err := protocol.DecodeServer(protocol.ReadPush(protocol.ReadFrame{Conv: r.Conv, User: r.User, Seq: r.Seq}))
	if err != nil || f.T != protocol.FrameRead || *f.Read != (protocol.ReadFrame{Conv: "g_1", User: "bob", Seq: 42}) {
		t.Fatalf("decoded %+v, %v", f, err)
	}
	for _, bad := range []string{``, `{}`, `{"conv":"g_1","user":"bob"}`, `{"conv":"g 1","user":"bob","seq":1}`, `[1]`} {
		if _, err := delivery.ParseRead([]byte(bad)); err == nil {
			t.Errorf("ParseRead(%q) accepted", bad)
		}
	}
}
