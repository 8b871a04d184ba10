package main

import (
	"strings"
	"testing"
)

// TestGCPacerSetting: NATTER_GC_MIN_INTERVAL takes a duration (0 = off); a
// bad value is refused with the variable named; only serving commands are
// paced.
func TestGCPacerSetting(t *testing.T) {
	env := func(v string) func(string) string {
		return func(k string) string {
			if k == "NATTER_GC_MIN_INTERVAL" {
				return v
			}
			return ""
		}
	}
	for _, v := range []string{"", "0", "500ms", "2s"} {
		stop, err := startGCPacer([]string{"dev"}, env(v))
		if err != nil {
			t.Errorf("%q: %v", v, err)
			continue
		}
		stop()
	}
	for _, v := range []string{"soon", "-1s", "5"} {
		if _, err := startGCPacer([]string{"edge"}, env(v)); err == nil || !strings.Contains(err.Error(), "NATTER_GC_MIN_INTERVAL") {
			t.Errorf("%q: err %v, want one naming NATTER_GC_MIN_INTERVAL", v, err)
		}
	}
	// Not a serving command: not read at all.
	for _, args := range [][]string{{"token"}, {"plan"}} {
		if _, err := startGCPacer(args, env("soon")); err != nil {
			t.Errorf("%v: %v, want the setting ignored", args, err)
		}
	}
}
