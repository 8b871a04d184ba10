package capacity

import (
	"os"
	"strconv"
	"strings"
	"testing"
)

// TestDocFigures fails when the figures table of docs/capacity.md and the
// figures compiled into natter plan disagree: a row missing on either side,
// or a different value, unit or source.
func TestDocFigures(t *testing.T) {
	b, err := os.ReadFile("../../docs/capacity.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := map[string][]string{}
	var order []string
	in := false
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "## ") {
			in = strings.TrimSpace(line) == "## Figures"
			continue
		}
		if !in || !strings.HasPrefix(line, "| `") {
			continue
		}
		cells := strings.Split(strings.Trim(strings.TrimSpace(line), "|"), "|")
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		if len(cells) != 5 {
			t.Errorf("docs/capacity.md: want 5 cells (key, value, unit, what, source): %s", line)
			continue
		}
		key := strings.Trim(cells[0], "`")
		if _, dup := doc[key]; dup {
			t.Errorf("docs/capacity.md: %s twice", key)
		}
		doc[key] = cells
		order = append(order, key)
	}
	if len(doc) == 0 {
		t.Fatal(`docs/capacity.md: no figures under "## Figures"`)
	}
	for i, f := range table {
		cells, ok := doc[f.Key]
		if !ok {
			t.Errorf("%s = %v %s: in the code, not in docs/capacity.md", f.Key, f.Value, f.Unit)
			continue
		}
		v, err := strconv.ParseFloat(strings.ReplaceAll(cells[1], ",", ""), 64)
		if err != nil || v != f.Value {
			t.Errorf("%s: docs/capacity.md says %q, the code %v", f.Key, cells[1], f.Value)
		}
		if cells[2] != f.Unit {
			t.Errorf("%s: unit %q in docs/capacity.md, %q in the code", f.Key, cells[2], f.Unit)
		}
		if cells[4] != f.Source {
			t.Errorf("%s: source %q in docs/capacity.md, %q in the code", f.Key, cells[4], f.Source)
		}
		if i < len(order) && order[i] != f.Key {
			t.Errorf("row %d: %s in docs/capacity.md, %s in the code (keep the same order)", i+1, order[i], f.Key)
		}
	}
	for key := range doc {
		if _, ok := Default()[key]; !ok {
			t.Errorf("%s: in docs/capacity.md, not in the code", key)
		}
	}
}
