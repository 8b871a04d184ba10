package backup_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/natter-im/natter/internal/backup"
)

// TestProgress: plain lines off a terminal, a bar redrawn in place on one;
// both end with the totals.
func TestProgress(t *testing.T) {
	t.Parallel()
	var lines bytes.Buffer
	p := backup.NewProgress(&lines, false, "backup")
	p.AddTotal(10)
	p.Add(4, 2048)
	p.Finish()
	if out := lines.String(); strings.Contains(out, "\r") || !strings.HasSuffix(out, "\n") || !strings.Contains(out, "backup done: 4 items 2.0 KiB") {
		t.Errorf("lines: %q", out)
	}
	var bar bytes.Buffer // written only by p's goroutine until Finish returns
	p = backup.NewProgress(&bar, true, "restore")
	p.AddTotal(10)
	p.Add(5, 100)
	p.Phase("stream MSGS")
	p.Finish()
	if out := bar.String(); !strings.Contains(out, "\r\033[K") || !strings.Contains(out, "restore done: 5 items 100 B") {
		t.Errorf("bar: %q", out)
	}
	var failed bytes.Buffer
	p = backup.NewProgress(&failed, false, "verify")
	p.Stop()
	p.Finish()
	if failed.Len() != 0 {
		t.Errorf("stopped progress printed %q", failed.String())
	}
}
