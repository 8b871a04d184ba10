package capacity

import (
	"testing"

	"github.com/natter-im/natter/internal/node"
)

// TestDefaultRoles keeps the model's count of natter's default roles (the
// processes at rest of a local cluster) and its worker roles in step with
// the roles natter runs.
func TestDefaultRoles(t *testing.T) {
	if defaultRoles != len(node.AllRoles) {
		t.Errorf("defaultRoles = %d, natter's default roles %d (%v)", defaultRoles, len(node.AllRoles), node.AllRoles)
	}
	planned := map[string]bool{}
	for _, r := range workerRoles {
		planned[r.name] = true
	}
	for _, r := range node.KnownRoles {
		if !planned[r] {
			t.Errorf("role %s is not in the plan's worker roles", r)
		}
	}
	if len(planned) != len(node.KnownRoles) {
		t.Errorf("the plan has %d worker roles, natter %d (%v)", len(planned), len(node.KnownRoles), node.KnownRoles)
	}
}
