package msglog

import (
	"encoding/json"
	"errors"
	"math/rand/v2"
	"slices"
	"testing"

	natter "github.com/natter-im/natter"
)

// windowOf lists the stream sequences a window holds, newest first.
func windowOf(t *testing.T, s string) []uint64 {
	t.Helper()
	var out []uint64
	w := windowIter{s: s}
	for {
		v, ok, err := w.next()
		if err != nil {
			t.Fatalf("window %q: %v", s, err)
		}
		if !ok {
			return out
		}
		out = append(out, v)
	}
}

// TestWindow appends entries at growing stream sequences (gaps of every
// size, some huge) and checks each entry's window against the list of the
// previous ones, also starting after an entry without a window.
func TestWindow(t *testing.T) {
	t.Parallel()
	rnd := rand.New(rand.NewPCG(1, 2))
	for _, start := range []struct {
		name   string
		stream uint64
		prev   string
	}{
		{"new conversation", 0, ""},
		{"after an entry without a window", 7, ""},
	} {
		t.Run(start.name, func(t *testing.T) {
			var stored []uint64 // stream seqs of the entries, oldest first
			if start.stream > 0 {
				stored = append(stored, start.stream)
			}
			cur, prev := start.stream, start.prev
			maxLen := 0
			for i := range 500 {
				w := nextWindow(prev, cur)
				maxLen = max(maxLen, len(w))
				var want []uint64
				for k := len(stored) - 1; k >= 0 && len(want) < Window; k-- {
					want = append(want, stored[k])
				}
				if got := windowOf(t, w); !slices.Equal(got, want) {
					t.Fatalf("entry %d: window %v, want %v", i, got, want)
				}
				gap := uint64(1 + rnd.IntN(200))
				if i%50 == 49 {
					gap = 1 << 40 // a huge gap now and then
				}
				cur, prev = cur+gap, w
				stored = append(stored, cur)
			}
			t.Logf("longest window %d bytes", maxLen)
		})
	}
	for _, bad := range []string{"!", "g", "AB" + "z", "gggggggggggggggggA", "BA"} { // "BA": 1, then a step of 0
		w := windowIter{s: bad}
		var err error
		for range Window {
			var ok bool
			if _, ok, err = w.next(); err != nil || !ok {
				break
			}
		}
		if !errors.Is(err, ErrCorrupt) {
			t.Errorf("window %q: %v, want ErrCorrupt", bad, err)
		}
	}
}

func TestCheckEntry(t *testing.T) {
	t.Parallel()
	m := natter.Message{ID: "m_abc", Conv: "c1", Seq: 42, From: "u1", Cmid: "x", Type: "text", Body: `he said "<hi>"` + "\n", TS: 1}
	canon := appendMessage(nil, &m)
	other, _ := json.Marshal(map[string]any{"ts": 1, "seq": 42, "conv": "c1", "id": "m_abc", "from": "u1", "cmid": "x", "type": "text", "body": m.Body})
	for _, tc := range []struct {
		name string
		data []byte
		conv string
		ok   bool
	}{
		{"as written", canon, "c1", true},
		{"other layout", other, "c1", true},
		{"other conversation", canon, "c2", false},
		{"other conversation, other layout", other, "c", false},
		{"not JSON", []byte(`{"id":"m_abc","conv":"c1","seq":42,`), "c1", false},
		{"no seq", []byte(`{"id":"m_abc","conv":"c1","from":"u"}`), "c1", false},
	} {
		seq, data, err := checkEntry(tc.data, tc.conv)
		if !tc.ok {
			if !errors.Is(err, ErrCorrupt) {
				t.Errorf("%s: %v, want ErrCorrupt", tc.name, err)
			}
			continue
		}
		if err != nil || seq != 42 || string(data) != string(canon) {
			t.Errorf("%s: seq %d, %s, %v; want 42, %s", tc.name, seq, data, err, canon)
		}
	}
}

// FuzzValidFlat checks that validFlat accepts only valid JSON, and every
// entry appendMessage writes.
func FuzzValidFlat(f *testing.F) {
	f.Add([]byte(`{"id":"m_x","conv":"c","seq":1,"from":"u","cmid":"a","body":"q\"\\\u00e9\n","ts":-5}`), "body")
	f.Add([]byte(`{}`), "")
	f.Add([]byte(`{"a":01}`), "\x00")
	f.Add([]byte(`{"a":"\u12"}`), "\xff")
	f.Add([]byte(`{"a":1,}`), "<&>\u2028")
	f.Fuzz(func(t *testing.T, b []byte, body string) {
		if validFlat(b) && !json.Valid(b) {
			t.Fatalf("validFlat accepts invalid JSON %q", b)
		}
		m := natter.Message{ID: "m_x", Conv: "c", Seq: 3, From: "u", Cmid: body, Type: body, Body: body, Ref: body, TS: -1}
		if e := appendMessage(nil, &m); !validFlat(e) {
			t.Fatalf("validFlat rejects an entry: %s", e)
		}
	})
}

// BenchmarkNextWindow is the append path's share of the back window: the
// next entry's header from a full window with gaps of 100.
func BenchmarkNextWindow(b *testing.B) {
	w, cur := "", uint64(0)
	for range Window + 1 {
		w, cur = nextWindow(w, cur), cur+100
	}
	b.ReportAllocs()
	for b.Loop() {
		_ = nextWindow(w, cur)
	}
	b.ReportMetric(float64(len(w)), "window-bytes")
}
