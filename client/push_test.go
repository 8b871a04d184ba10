package client_test

import (
	"errors"
	"testing"

	"github.com/natter-im/natter/client"
	"github.com/natter-im/natter/edge/protocol"
	"github.com/natter-im/natter/internal/testenv"
	"github.com/natter-im/natter/jetstream/pushreg"
)

// TestPushRegistration: RegisterPush and RegisterWebPush store the
// device's registration (the latest replaces the former), UnregisterPush
// removes it, and a bad provider is bad_frame with nothing stored.
func TestPushRegistration(t *testing.T) {
	dev := startDev(t)
	c := dial(t, []string{wsURL(dev)}, "pia", func(cfg *client.Config) { cfg.Device = "phone" })
	nc := testenv.Connect(t, dev.NATSURL())
	regs, err := pushreg.Open(ctxT(t), nc, testenv.JetStream(t, nc))
	if err != nil {
		t.Fatal(err)
	}
	stored := func() []pushreg.Device {
		t.Helper()
		m, err := regs.Users(ctxT(t), []string{"pia"})
		if err != nil {
			t.Fatal(err)
		}
		return m["pia"]
	}
	var pe *protocol.Error
	if err := c.RegisterPush(ctxT(t), "mpns", "abc"); !errors.As(err, &pe) || pe.Code != protocol.CodeBadFrame {
		t.Fatalf("unknown provider: %v", err)
	}
	if got := stored(); len(got) != 0 {
		t.Fatalf("stored after a refusal: %+v", got)
	}
	tok := "5b1f0c3a9e2d4f6a8b7c1d0e3f2a4b6c8d9e0f1a2b3c4d5e6f708192a3b4c5d6"
	if err := c.RegisterPush(ctxT(t), protocol.PushAPNs, tok); err != nil {
		t.Fatal(err)
	}
	if got := stored(); len(got) != 1 || got[0].Device != "phone" || got[0].Token != tok {
		t.Fatalf("stored %+v", got)
	}
	sub := protocol.PushSubscription{Endpoint: "https://push.example.net/wp/abc123", Keys: protocol.PushKeys{
		P256dh: "BGuD43Mzyedq42_VFeRhxeHl5WVR9s0YhrQ6hYFp-IdYomXhnYW7s8ueRsJUGZoRd3lExF9e282hUz37DdGxKrU", Auth: "62kRtUpxHN1E5gOByJjVTg"}}
	if err := c.RegisterWebPush(ctxT(t), sub); err != nil {
		t.Fatal(err)
	}
	if got := stored(); len(got) != 1 || got[0].Provider != pushreg.WebPush || got[0].Endpoint != sub.Endpoint {
		t.Fatalf("stored %+v", got)
	}
	if err := c.UnregisterPush(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if got := stored(); len(got) != 0 {
		t.Fatalf("stored after unregister %+v", got)
	}
}
