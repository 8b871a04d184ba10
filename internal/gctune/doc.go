// Package gctune sets the Go garbage collector of natter's serving
// processes (natter dev, edge, worker, nats, store and the bench's
// in-process server): the GC percent (Go's GOGC) and a soft memory limit
// (Go's GOMEMLIMIT), from natter's configuration. GOGC or GOMEMLIMIT in the
// environment, Go's own settings, win over natter's.
package gctune
