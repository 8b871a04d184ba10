// Package devpki makes a throwaway certificate authority and the
// certificates it signs, for a local cluster (natter cluster up) and the
// tests: ECDSA P-256 keys, PEM files. It is no substitute for an
// operator's PKI.
package devpki
