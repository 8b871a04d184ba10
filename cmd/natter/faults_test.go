package main

import (
	"errors"
	"testing"

	"github.com/natter-im/natter/internal/node"
)

// TestFaultsFromEnv: NATTER_FAULT, the chaos suite's testing hook, parses
// into node.Faults; a bad value is a usage error (exit code 2).
func TestFaultsFromEnv(t *testing.T) {
	for _, tc := range []struct {
		env  string
		want node.Faults
		bad  bool
	}{
		{env: "", want: node.Faults{}},
		{env: "persist-kill-after-write:3", want: node.Faults{PersistKillAfterWrite: 3}},
		{env: "persist-fail-body:POISON", want: node.Faults{PersistFailBody: "POISON"}},
		{env: "persist-fail-body:P, persist-kill-after-write:1", want: node.Faults{PersistFailBody: "P", PersistKillAfterWrite: 1}},
		{env: "persist-kill-after-write:0", bad: true},
		{env: "persist-kill-after-write:x", bad: true},
		{env: "persist-fail-body:", bad: true},
		{env: "edge-explode", bad: true},
	} {
		t.Run(tc.env, func(t *testing.T) {
			t.Setenv(envFault, tc.env)
			got, err := faultsFromEnv()
			var ue usageError
			switch {
			case tc.bad && !errors.As(err, &ue):
				t.Fatalf("got %+v, %v; want a usage error", got, err)
			case !tc.bad && (err != nil || got != tc.want):
				t.Fatalf("got %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}
