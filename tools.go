//go:build tools

// This file pins modules that packages being written import; it is removed
// once they are imported for real.
package natter

import (
	_ "github.com/santhosh-tekuri/jsonschema/v6"
	_ "go.yaml.in/yaml/v3"
)
