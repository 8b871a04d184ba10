package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/natter-im/natter/internal/node"
)

// envFault is the testing hook of the chaos suite (docs/config.md, "Testing
// hooks"). It is an environment variable only, not a flag: it is not meant
// to be set by hand.
const envFault = "NATTER_FAULT"

// faultsFromEnv reads NATTER_FAULT: a comma-separated list of
// persist-kill-after-write:N and persist-fail-body:TEXT. Unset or empty
// injects nothing.
func faultsFromEnv() (node.Faults, error) {
	var f node.Faults
	v := os.Getenv(envFault)
	if v == "" {
		return f, nil
	}
	bad := func(format string, a ...any) (node.Faults, error) {
		return node.Faults{}, usageError{fmt.Errorf(envFault+": "+format, a...)}
	}
	for _, item := range strings.Split(v, ",") {
		kind, arg, _ := strings.Cut(strings.TrimSpace(item), ":")
		switch kind {
		case "persist-kill-after-write":
			n, err := strconv.Atoi(arg)
			if err != nil || n < 1 {
				return bad("persist-kill-after-write:%s: want a batch count of 1 or more", arg)
			}
			f.PersistKillAfterWrite = n
		case "persist-fail-body":
			if arg == "" {
				return bad("persist-fail-body: want the text of the bodies to fail")
			}
			f.PersistFailBody = arg
		default:
			return bad("unknown fault %q (known: persist-kill-after-write:N, persist-fail-body:TEXT)", item)
		}
	}
	return f, nil
}
