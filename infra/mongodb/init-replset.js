// natter: initiate a 3-member MongoDB replica set and prepare it for natter.
//
// Start three mongod with the same --replSet rs0 and --keyFile (auth on),
// then, on m1, through the localhost exception (no user exists yet):
//
//   NATTER_MONGO_PASSWORD=... ADMIN_PASSWORD=... \
//     mongosh --quiet "mongodb://localhost:27017/?directConnection=true" --file init-replset.js
//
// Hosts, set name and database can be overridden with RS_NAME, RS_HOSTS
// (comma-separated host:port) and NATTER_MONGO_DB. Idempotent: run it again
// and it skips what exists.

const rsName = process.env.RS_NAME || "rs0";
const hosts = (process.env.RS_HOSTS || "m1:27017,m2:27017,m3:27017").split(",");
const dbName = process.env.NATTER_MONGO_DB || "natter";

function isInitiated() {
  try {
    rs.status();
    return true;
  } catch (e) {
    if (e.codeName === "NotYetInitialized") return false;
    throw e;
  }
}

// 1. The replica set: three data-bearing members, so a majority (2) survives
//    the loss of any one. m1 is preferred as primary (priority 2); put each
//    member in its own zone. In a second region, add members with
//    priority 0 (never primary) or a full region of members (see README.md,
//    "Multi-region").
if (!isInitiated()) {
  rs.initiate({
    _id: rsName,
    members: hosts.map((h, i) => ({ _id: i, host: h, priority: i === 0 ? 2 : 1 })),
  });
}
// Wait for a primary before writing.
for (let i = 0; i < 120 && !db.hello().isWritablePrimary; i++) sleep(500);
if (!db.hello().isWritablePrimary) throw new Error("no primary after 60s");

// 2. Cluster-wide defaults: majority writes (natter sets w: "majority" on its
//    client anyway; this covers every other client) and majority reads.
db.adminCommand({
  setDefaultRWConcern: 1,
  defaultWriteConcern: { w: "majority", wtimeout: 10000 },
  defaultReadConcern: { level: "majority" },
});

// 3. Users: an admin, and natter's own user limited to its database.
const admin = db.getSiblingDB("admin");
if (process.env.ADMIN_PASSWORD && !admin.getUser("admin")) {
  admin.createUser({ user: "admin", pwd: process.env.ADMIN_PASSWORD, roles: ["root"] });
  admin.auth("admin", process.env.ADMIN_PASSWORD);
}
if (process.env.NATTER_MONGO_PASSWORD && !admin.getUser("natter")) {
  admin.createUser({
    user: "natter",
    pwd: process.env.NATTER_MONGO_PASSWORD,
    roles: [{ role: "readWrite", db: dbName }],
  });
}

// 4. The index natter creates at start (workers/store), created here too so
//    a fresh cluster has it before any traffic or sharding: one message per
//    (conversation, seq), and the range scan of history pages.
const natter = db.getSiblingDB(dbName);
natter.messages.createIndex({ conv: 1, seq: 1 }, { name: "conv_seq", unique: true });

print(`replica set ${rsName}: ${hosts.join(", ")}; database ${dbName} ready`);
print(`NATTER_MONGO_URI=mongodb://natter:<password>@${hosts.join(",")}/?replicaSet=${rsName}&authSource=admin`);
