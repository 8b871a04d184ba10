// Package lru is the cache the conversations service's client and server
// share (the member cache of jetstream/convapi, the list cache of
// workers/convsvc): values by key with a TTL and a size bound, least
// recently used out first, and one shared load in flight per key.
package lru
