// Package persist is the worker role that archives the message log into
// MongoDB: it takes batches from the shared PERSIST consumer, stores them
// with one unordered InsertMany (idempotent by message id, so redeliveries
// store nothing twice) and acks them. Its ack floor on PERSIST tells the
// log which entries the archive holds (the append's retry check, package
// msglog).
package persist
