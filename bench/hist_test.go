package bench

import (
	"encoding/json"
	"io"
	"math"
	"testing"
	"time"
)

func TestHist(t *testing.T) {
	h := newHist()
	for i := 1; i <= 1000; i++ {
		h.add(time.Duration(i) * time.Millisecond)
	}
	for _, c := range []struct{ q, want float64 }{{0.5, 500}, {0.99, 990}, {0.999, 999}} {
		if got := h.quantile(c.q); math.Abs(got-c.want)/c.want > 0.04 {
			t.Errorf("q%v = %v ms, want ~%v", c.q, got, c.want)
		}
	}
	b, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	var h2 hist
	if err := json.Unmarshal(b, &h2); err != nil {
		t.Fatal(err)
	}
	h2.merge(h)
	if h2.n.Load() != 2000 || h2.quantile(0.5) != h.quantile(0.5) || h2.maxUs.Load() != 1_000_000 {
		t.Errorf("merged: n %d p50 %v max %d", h2.n.Load(), h2.quantile(0.5), h2.maxUs.Load())
	}
	if l := newHist().latency(); l != nil {
		t.Errorf("empty latency %+v", l)
	}
}

func TestParseAddrs(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int
		bad  bool
	}{
		{"127.0.0.2-127.0.0.9", 8, false},
		{"127.0.0.2,127.0.0.3", 2, false},
		{"127.0.0.9-127.0.0.2", 0, true},
		{"localhost", 0, true},
	} {
		got, err := parseAddrs(c.in)
		if (err != nil) != c.bad || len(got) != c.want {
			t.Errorf("%q: %v %v", c.in, got, err)
		}
	}
}

func TestSplit(t *testing.T) {
	parts := split(10, 3)
	if len(parts) != 3 || parts[0] != [2]int{0, 3} || parts[2] != [2]int{6, 10} {
		t.Errorf("split: %v", parts)
	}
	if p := split(2, 5); len(p) != 2 {
		t.Errorf("more parts than items: %v", p)
	}
}

func TestParse(t *testing.T) {
	for _, c := range []struct {
		args []string
		ok   bool
	}{
		{[]string{"relay", "--conns", "10", "--rate", "2000", "--source-addrs", "127.0.0.2-127.0.0.3"}, true},
		{[]string{"nope"}, false},
		{[]string{}, false},
		{[]string{"relay", "--url", "ws://x:1/v1/ws"}, false}, // no --jwt-secret
		{[]string{"relay", "--url", "http://x"}, false},
		{[]string{"relay", "--conns", "-1"}, false},
	} {
		_, err := parse(c.args, io.Discard)
		if (err == nil) != c.ok {
			t.Errorf("%v: %v", c.args, err)
		}
	}
}
