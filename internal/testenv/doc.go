// Package testenv is what natter's tests share to stand up real components
// and wait on them: an embedded nats-server with JetStream (StartNATS), the
// connections to it (Connect, JetStream), and CheckFor, which polls a
// condition with a deadline instead of sleeping.
//
// It imports nothing under workers/ and not the MongoDB driver, so the
// tests of edge/ and client/ may use it without crossing the wall; the
// embedded store's helpers are in workers/store/storetest.
package testenv
