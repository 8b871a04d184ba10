package main

import "testing"

// TestDistMatchesSources: the committed dist/ (what natter embeds) is what
// src/ and the SDK it imports build to.
func TestDistMatchesSources(t *testing.T) {
	files, err := build("..")
	if err != nil {
		t.Fatal(err)
	}
	if err := compare("..", files); err != nil {
		t.Fatal(err)
	}
}
