package thumbs

import "testing"

func TestFit(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ w, h, side, ww, wh int }{
		{640, 480, 320, 320, 240},
		{480, 640, 320, 240, 320},
		{100, 50, 320, 100, 50}, // never enlarged
		{10000, 1, 320, 320, 1}, // at least one pixel
		{1, 10000, 320, 1, 320},
		{320, 320, 320, 320, 320},
	} {
		if w, h := fit(c.w, c.h, c.side); w != c.ww || h != c.wh {
			t.Errorf("fit(%d, %d, %d) = %d x %d, want %d x %d", c.w, c.h, c.side, w, h, c.ww, c.wh)
		}
	}
}
