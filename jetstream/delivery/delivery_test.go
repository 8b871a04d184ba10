package delivery_test

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/natter-im/natter/jetstream/delivery"
)

func entries(sizes ...int) [][]byte {
	out := make([][]byte, len(sizes))
	for i, n := range sizes {
		out[i] = bytes.Repeat([]byte{byte('a' + i%26)}, n)
	}
	return out
}

func TestPackSplitRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name     string
		sizes    []int
		maxBytes int
		msgs     int
	}{
		{"one entry has no header", []int{100}, 1000, 1},
		{"all in one", []int{10, 20, 30, 0, 5}, 1000, 1},
		{"split at the limit", []int{400, 400, 400, 400}, 800, 2},
		{"an entry larger than the limit travels alone", []int{10, 2000, 10}, 1000, 3},
		{"empty entries", []int{0, 0}, 10, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := entries(tc.sizes...)
			payloads := delivery.Pack(in, tc.maxBytes)
			if len(payloads) != tc.msgs {
				t.Fatalf("%d payloads, want %d", len(payloads), tc.msgs)
			}
			var got [][]byte
			for _, p := range payloads {
				m := p.Msg("im.dlv.alice")
				if m.Subject != "im.dlv.alice" {
					t.Fatalf("subject %q", m.Subject)
				}
				parts, err := delivery.Split(m)
				if err != nil {
					t.Fatal(err)
				}
				if len(parts) == 1 && m.Header != nil {
					t.Fatalf("a one-entry message has a header: %v", m.Header)
				}
				if len(parts) > 1 && len(m.Data) > tc.maxBytes {
					t.Fatalf("batch of %d bytes over the limit %d", len(m.Data), tc.maxBytes)
				}
				got = append(got, parts...)
			}
			if len(got) != len(in) {
				t.Fatalf("%d entries back, want %d", len(got), len(in))
			}
			for i := range in {
				if !bytes.Equal(got[i], in[i]) {
					t.Fatalf("entry %d: %q, want %q", i, got[i], in[i])
				}
			}
		})
	}
}

func TestSplitPlainMessage(t *testing.T) {
	m := &nats.Msg{Subject: "im.dlv.bob", Data: []byte(`{"id":"m1"}`)}
	parts, err := delivery.Split(m)
	if err != nil || len(parts) != 1 || string(parts[0]) != `{"id":"m1"}` {
		t.Fatalf("Split = %q, %v", parts, err)
	}
}

func TestSplitMalformed(t *testing.T) {
	for _, lens := range []string{"3,x", "3,-1", "2,2", "3,2,9", "1", ",", "3,"} {
		m := &nats.Msg{Data: []byte("abcde"), Header: nats.Header{delivery.Header: []string{lens}}}
		if _, err := delivery.Split(m); !errors.Is(err, delivery.ErrMalformed) {
			t.Errorf("lengths %q of 5 bytes: err %v, want ErrMalformed", lens, err)
		}
	}
	m := &nats.Msg{Data: []byte("abcde"), Header: nats.Header{delivery.Header: []string{"3,2"}}}
	parts, err := delivery.Split(m)
	if err != nil || fmt.Sprintf("%q", parts) != `["abc" "de"]` {
		t.Fatalf("Split = %q, %v", parts, err)
	}
}

func TestPackConv(t *testing.T) {
	entries := [][]byte{[]byte("one"), []byte("two"), []byte("three")}
	for _, maxBytes := range []int{1, 6, 100} {
		var got [][]byte
		for _, p := range delivery.PackConv("g_1", entries, maxBytes) {
			conv, es, err := delivery.SplitConv(p.Msg("im.dlv.grp.all"))
			if err != nil || conv != "g_1" {
				t.Fatalf("max %d: conv %q, %v", maxBytes, conv, err)
			}
			got = append(got, es...)
		}
		if len(got) != 3 || string(got[2]) != "three" {
			t.Fatalf("max %d: entries %q", maxBytes, got)
		}
	}
	bad := delivery.PackConv("g.1", entries, 100)[0].Msg("x")
	if _, _, err := delivery.SplitConv(bad); err == nil {
		t.Fatal("invalid conversation id accepted")
	}
	listed := delivery.PackMembers([]string{"a"}, entries, 100)[0].Msg("x")
	if conv, _, err := delivery.SplitConv(listed); conv != "" || err != nil {
		t.Fatalf("listed broadcast: conv %q, %v", conv, err)
	}
}
