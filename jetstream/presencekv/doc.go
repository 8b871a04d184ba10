// Package presencekv is the format of the PRESENCE bucket's online leases
// (on.<user>.<edge>) and their batched read by user: which edges hold a
// user's devices, and which devices those are.
//
// An edge writes a lease when a user's first device connects to it and
// writes it again whenever the set of the user's devices on it changes
// (docs/design.md, "Presence and typing"); the value is the JSON [Lease].
// A lease of an older edge holds only its edge id: [Read] reports its
// user as online with devices unknown, which readers take as every device
// online (the push role then pushes to none of them).
package presencekv
