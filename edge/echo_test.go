package edge

import (
	"fmt"
	"slices"
	"testing"

	"github.com/natter-im/natter/edge/protocol"
)

func pushOf(id string) []byte {
	return protocol.Push([]byte(`{"id":"` + id + `","conv":"c","seq":1,"from":"u","cmid":"x","body":"b","ts":1}`))
}

// TestWithoutEchoes: a batch of pushes loses those of the session's kept
// ids (each id forgotten once matched), keeps the order of the others and
// leaves the shared batch as it was.
func TestWithoutEchoes(t *testing.T) {
	t.Parallel()
	a, b, c, conv := pushOf("m_a"), pushOf("m_b"), pushOf("m_c"), protocol.ConvPush(protocol.ConvFrame{Conv: "c", Event: "renamed"})
	for _, tc := range []struct {
		echoes     []string
		frames     [][]byte
		want       [][]byte
		wantEchoes []string
	}{
		{nil, [][]byte{a, b}, [][]byte{a, b}, nil},
		{[]string{"m_b"}, [][]byte{a, b, c}, [][]byte{a, c}, nil},
		{[]string{"m_a", "m_x"}, [][]byte{a}, [][]byte{}, []string{"m_x"}},
		{[]string{"m_c", "m_a"}, [][]byte{a, conv, b, c}, [][]byte{conv, b}, nil},
		{[]string{"m_x"}, [][]byte{conv, b}, [][]byte{conv, b}, []string{"m_x"}},
	} {
		s := &session{echoes: slices.Clone(tc.echoes)}
		batch := slices.Clone(tc.frames)
		got := s.withoutEchoesLocked(batch)
		if len(got) != len(tc.want) || !slices.EqualFunc(got, tc.want, func(x, y []byte) bool { return &x[0] == &y[0] }) {
			t.Errorf("echoes %v: got %d frames %q, want %q", tc.echoes, len(got), got, tc.want)
		}
		if !slices.Equal(s.echoes, tc.wantEchoes) {
			t.Errorf("echoes %v: left %v, want %v", tc.echoes, s.echoes, tc.wantEchoes)
		}
		if !slices.EqualFunc(batch, tc.frames, func(x, y []byte) bool { return &x[0] == &y[0] }) {
			t.Errorf("echoes %v: the shared batch changed", tc.echoes)
		}
	}
}

// TestEchoesBounded: a session keeps at most maxEchoes ids (with a send
// window of 0), the newest.
func TestEchoesBounded(t *testing.T) {
	t.Parallel()
	s := &session{e: &Edge{}}
	for i := range maxEchoes + 5 {
		s.expectEcho(fmt.Sprint("m_", i))
	}
	if len(s.echoes) != maxEchoes || s.echoes[0] != "m_5" || s.echoes[maxEchoes-1] != fmt.Sprint("m_", maxEchoes+4) {
		t.Fatalf("kept %v", s.echoes)
	}
	s.forgetEcho("m_7")
	if slices.Contains(s.echoes, "m_7") || len(s.echoes) != maxEchoes-1 {
		t.Fatalf("after forget: %v", s.echoes)
	}
}
