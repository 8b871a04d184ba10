// Package storetest starts the embedded store (FerretDB on SQLite) for
// tests and ends it with them. It imports the MongoDB driver through
// workers/store, so only tests under workers/, cmd/ and test/ use it; the
// NATS helpers that edge/ and client/ tests share are in internal/testenv.
package storetest
