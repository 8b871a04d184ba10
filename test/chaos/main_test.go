//go:build chaos

package chaos

import (
	"testing"

	"github.com/natter-im/natter/internal/testbin"
)

// binary is the natter binary every process of the cluster runs, built
// once.
var binary string

func TestMain(m *testing.M) { testbin.Main(m, "../../cmd/natter", &binary) }
