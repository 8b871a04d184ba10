// Package persist is the worker role that archives the message log into
// MongoDB: it takes batches from the shared PERSIST consumer, stores them
// with one unordered InsertMany (idempotent by message id, so redeliveries
// store nothing twice) and makes sure each message's idempotency record
// exists before it acks.
package persist
