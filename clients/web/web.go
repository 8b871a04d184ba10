package web

import (
	"embed"
	"io/fs"
)

//go:embed dist
var dist embed.FS

// FS is the built app: index.html at its root, and the files it loads.
func FS() fs.FS {
	sub, err := fs.Sub(dist, "dist")
	if err != nil {
		panic("web: " + err.Error()) // "dist" is a valid path: cannot happen
	}
	return sub
}
