// Package certreload serves a TLS certificate and key read from files and
// reloads them when the files change, without a restart: connections that
// are up keep the certificate they were made with, every new handshake
// gets the newest good pair. A changed pair that does not load (a missing
// or half-written file, a key that does not match) is logged and the
// previous pair kept.
package certreload
