// natter: shard the natter database on a sharded cluster.
//
// Run against a mongos once the shards (each a 3-member replica set, see
// init-replset.js) are added with sh.addShard():
//
//   mongosh --quiet "mongodb://admin:...@mongos1:27017/admin" --file shard.js
//
// Database name: NATTER_MONGO_DB (default natter). Idempotent for the
// collections already sharded. Why these keys: README.md, "Shard keys".

const dbName = process.env.NATTER_MONGO_DB || "natter";
const natter = db.getSiblingDB(dbName);
const config = db.getSiblingDB("config");

function isSharded(coll) {
  return config.collections.countDocuments({ _id: `${dbName}.${coll}` }) > 0;
}

sh.enableSharding(dbName);

// messages: ranged on { conv: 1, seq: 1 }, the unique index natter already
// has (conv_seq). The shard key is that index, so MongoDB enforces "one
// message per (conversation, seq)" across every shard, and every natter
// query on messages (a page of one conversation by seq range) goes to one
// shard. Conversation ids are hex digests ("d_" + 32 hex, "g_" + 32 hex), so
// ranges of conv spread writes like a hash would.
if (!isSharded("messages")) {
  natter.messages.createIndex({ conv: 1, seq: 1 }, { name: "conv_seq", unique: true });
  sh.shardCollection(`${dbName}.messages`, { conv: 1, seq: 1 }, true);

  // An empty ranged collection starts as one chunk on one shard. Split it at
  // the first hex digit of each id kind (32 ranges) and deal the ranges
  // round-robin over the shards, so writes spread from the first message.
  const shards = config.shards.find().toArray().map((s) => s._id);
  let i = 0;
  for (const kind of ["d_", "g_"]) {
    for (const h of "0123456789abcdef") {
      const at = { conv: kind + h, seq: MinKey() };
      if (!(kind === "d_" && h === "0")) sh.splitAt(`${dbName}.messages`, at);
    }
  }
  for (const kind of ["d_", "g_"]) {
    for (const h of "0123456789abcdef") {
      const shard = shards[i++ % shards.length];
      try {
        sh.moveChunk(`${dbName}.messages`, { conv: kind + h, seq: 0 }, shard);
      } catch (e) {
        // Already there.
        if (!/already|same shard/i.test(String(e))) throw e;
      }
    }
  }
}

// Small documents looked up by _id only: a hashed _id spreads them evenly and
// every lookup goes to one shard.
for (const coll of ["conversations", "users", "cursors"]) {
  if (!isSharded(coll)) sh.shardCollection(`${dbName}.${coll}`, { _id: "hashed" });
}

sh.status();
