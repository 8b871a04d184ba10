// The SDK's receive path, beside the Go SDK's (client/delivery_benchmark_test.go):
//
//   push path:     a push frame as the edge writes it (a 128-byte body), from
//                  the frame's text to the "message" listener of the app: the
//                  JSON decode, the client's frame switch, the delivery state,
//                  the hand-over (BenchmarkPushPath). The socket read is not in it.
//   delivery path: a message through the delivery state alone, one in 16
//                  arriving early and held back (BenchmarkDeliveryPath).
//
// Each round reports ns per message and messages per second per core (by
// process CPU time: node runs it on one thread, plus its GC threads).
//
//   node bench/receive.mjs [messages per round, default 1000000] [rounds, default 5]
import { Client, Delivery } from "../dist/index.js";
import { Conn } from "../dist/conn.js";

const n = Number(process.argv[2] ?? 1e6);
const rounds = Number(process.argv[3] ?? 5);

const conv = "g_7f3a9c0e1d2b";
const first = 1e15; // seqs of 16 digits, like the Go benchmark's
const body = "1767225600123456789 " + "x".repeat(108);
const head = `{"t":"msg","msg":{"id":"m_K5QWY3DFMZXGC4TBNFZGK2LMNQ","conv":"${conv}","seq":`;
const tail = `,"from":"bb1c2d3f0","cmid":"Zm9vYmFyYmF6cXV4cXV1eA","body":"${body}","ts":1767225600123}}`;

class NoSocket {
  readyState = 1;
  onopen = null;
  onmessage = null;
  onclose = null;
  onerror = null;
  send() {}
  close() {}
}

/** pushPath returns a function that feeds count frames to a fresh client and checks they were all delivered. */
function pushPath(count) {
  const c = new Client({ urls: "ws://127.0.0.1:9/v1/ws", token: "t", WebSocket: NoSocket, cursors: { [conv]: first - 1 } });
  c["delivery"].applySync({}, { convs: [{ conv, head: first - 1 }] });
  const cn = new Conn(new NoSocket(), "ws://127.0.0.1:9/v1/ws", 0);
  cn.onFrame = (f) => c["onFrame"](f);
  let got = 0;
  let last = 0;
  c.on("message", (m) => {
    got++;
    last = m.seq;
  });
  return () => {
    for (let i = 0; i < count; i++) cn.onMessage(head + (first + i) + tail);
    if (got !== count || last !== first + count - 1) throw new Error(`delivered ${got} of ${count}`);
  };
}

/** deliveryPath returns a function that runs count messages through a Delivery, one in 16 swapped with its successor. */
function deliveryPath(count) {
  let got = 0;
  const d = new Delivery(() => got++, () => {}, { g_bench: 0 });
  d.applySync({}, { convs: [{ conv: "g_bench", head: 0 }] });
  const msgs = Array.from({ length: count }, (_, i) => ({ id: "m_x", conv: "g_bench", seq: i + 1, from: "alice", body: "benchmark message body", ts: 0 }));
  return () => {
    for (let i = 0; i < count; i++) {
      const seq = i + 1;
      if (seq % 16 === 0 && i + 1 < count) {
        d.onPush(msgs[i + 1]);
        d.onPush(msgs[i]);
        i++;
        continue;
      }
      d.onPush(msgs[i]);
    }
    if (got !== count) throw new Error(`delivered ${got} of ${count}`);
  };
}

function measure(name, make) {
  make(Math.min(n, 100000))(); // warm-up: the JIT
  for (let r = 1; r <= rounds; r++) {
    const run = make(n);
    const cpu0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    run();
    const wall = Number(process.hrtime.bigint() - t0) / 1e9;
    const c = process.cpuUsage(cpu0);
    const cpu = (c.user + c.system) / 1e6;
    console.log(
      `${name} round ${r}: ${n} msgs, ${((wall * 1e9) / n).toFixed(0)} ns/msg, ${Math.round(n / wall).toLocaleString("en")} msgs/s wall, ` +
        `${Math.round(n / cpu).toLocaleString("en")} msgs/s per core (${cpu.toFixed(2)} s CPU in ${wall.toFixed(2)} s)`,
    );
  }
}

console.log(`node ${process.version}, ${n} messages per round`);
measure("push path", pushPath);
measure("delivery path", deliveryPath);
