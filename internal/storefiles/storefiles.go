// Package storefiles copies the files of a stopped embedded store, for the
// benchmarks that start each case from a copy of one pre-filled store.
package storefiles

import (
	"io"
	"os"
	"path/filepath"
)

// Copy copies the regular files of src into dst, except those named in
// skip, and syncs each, so that the writes of what runs next do not queue
// behind the copy.
func Copy(src, dst string, skip ...string) error {
	ents, err := os.ReadDir(src)
	if err != nil {
		return err
	}
next:
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		for _, s := range skip {
			if e.Name() == s {
				continue next
			}
		}
		if err := copyFile(filepath.Join(src, e.Name()), filepath.Join(dst, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		_ = out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		_ = out.Close()
		return err
	}
	return out.Close()
}
