// Package store is natter's store of record on MongoDB: messages (the
// archive behind the JetStream hot tier), conversations with their members,
// each user's conversation list and read cursors.
//
// The code is written for real MongoDB (replica set or sharded cluster);
// the embedded default is FerretDB v1 on SQLite (see [StartEmbedded]), which
// speaks the same wire protocol. Only lone _id lookups are cheap on
// FerretDB, so hot paths use _id equality and batch writes; on its SQLite
// backend, which reads no secondary index, the messages collection has none
// (see [Open]).
package store
