package delivery_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/natter-im/natter/jetstream/delivery"
)

// TestSignalRoundTrip: a signal broadcast gives back its conversation,
// kind, the users left out and the frame; a message broadcast is not one.
func TestSignalRoundTrip(t *testing.T) {
	t.Parallel()
	frame := []byte(`{"t":"conv","conv":"g_1","event":"renamed","rev":3,"name":"x"}`)
	for _, except := range [][]string{nil, {"bob"}, userIDs(1000)} {
		p := delivery.PackSignal("g_1", delivery.SignalConv, frame, except)
		conv, kind, got, f, err := delivery.SplitSignal(p.Msg("im.dlv.grp.all"))
		if err != nil || conv != "g_1" || kind != delivery.SignalConv || string(f) != string(frame) {
			t.Fatalf("%d left out: %q %q %s %v", len(except), conv, kind, f, err)
		}
		var ids []string
		for id := range got.All() {
			ids = append(ids, string(id))
		}
		if !slices.Equal(ids, except) {
			t.Fatalf("left out %v, want %v", ids, except)
		}
	}
	for _, p := range append(delivery.PackConv("g_1", [][]byte{frame}, 1<<20), delivery.PackMembers([]string{"a"}, [][]byte{frame}, 1<<20)...) {
		if conv, _, _, _, err := delivery.SplitSignal(p.Msg("im.dlv.grp.all")); conv != "" || err != nil {
			t.Fatalf("a message broadcast split as a signal: %q %v", conv, err)
		}
	}
}

// TestSignalMalformed: a signal broadcast whose headers do not describe its
// data is refused.
func TestSignalMalformed(t *testing.T) {
	t.Parallel()
	frame := []byte(`{"t":"conv"}`)
	for name, m := range map[string]*nats.Msg{
		"no conv":       {Header: nats.Header{delivery.SignalHeader: {"conv"}, delivery.ExceptHeader: {"0"}}, Data: frame},
		"bad conv":      {Header: nats.Header{delivery.SignalHeader: {"conv"}, delivery.ConvHeader: {"g.1"}, delivery.ExceptHeader: {"0"}}, Data: frame},
		"no length":     {Header: nats.Header{delivery.SignalHeader: {"conv"}, delivery.ConvHeader: {"g_1"}}, Data: frame},
		"long length":   {Header: nats.Header{delivery.SignalHeader: {"conv"}, delivery.ConvHeader: {"g_1"}, delivery.ExceptHeader: {"12"}}, Data: frame},
		"padded length": {Header: nats.Header{delivery.SignalHeader: {"conv"}, delivery.ConvHeader: {"g_1"}, delivery.ExceptHeader: {"03"}}, Data: append([]byte("bob"), frame...)},
		"bad id":        {Header: nats.Header{delivery.SignalHeader: {"conv"}, delivery.ConvHeader: {"g_1"}, delivery.ExceptHeader: {"4"}}, Data: append([]byte("b ob"), frame...)},
		"no frame":      {Header: nats.Header{delivery.SignalHeader: {"conv"}, delivery.ConvHeader: {"g_1"}, delivery.ExceptHeader: {"3"}}, Data: []byte("bob")},
	} {
		if _, _, _, _, err := delivery.SplitSignal(m); !errors.Is(err, delivery.ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", name, err)
		}
	}
}
