package natter_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestWalls checks the layering the layout promises (docs/design.md,
// "Layout"): the socket tier (edge/) and the client SDK (client/) depend on
// neither the workers nor the store, in their code or in their tests, so
// that an edge process never links the database. Contracts both sides need
// live under jetstream/ (jetstream/convapi for the conversations service).
// Tests are outside the rule: the SDK's tests start a whole natter dev.
func TestWalls(t *testing.T) {
	t.Parallel()
	forbidden := []string{
		"github.com/natter-im/natter/workers/",
		"go.mongodb.org/mongo-driver",
		"github.com/FerretDB/",
		"modernc.org/sqlite",
	}
	for _, root := range []string{"./edge/...", "./client/..."} {
		out, err := exec.Command("go", "list", "-deps", "-f", `{{.ImportPath}}`, root).CombinedOutput()
		if err != nil {
			t.Fatalf("go list %s: %v\n%s", root, err, out)
		}
		for _, dep := range strings.Fields(string(out)) {
			for _, f := range forbidden {
				if strings.HasPrefix(dep, f) {
					t.Errorf("%s depends on %s: the socket tier and the SDK must not link %s (move what both sides need under jetstream/)", root, dep, f)
					break
				}
			}
		}
	}
}
