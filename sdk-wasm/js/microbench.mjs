// Per-event cost of the SDK in Node, without a network: a fake WebSocket delivers N event frames
// to the client's onmessage handler as fast as possible, against a raw `JSON.parse` + callback
// loop over the same strings. What it isolates is the SDK's own work per event (decode, session,
// dispatch); bench.mjs measures the whole browser path. Usage: node microbench.mjs [N] [rounds]
const N = Number(process.argv[2] ?? 200000);
const ROUNDS = Number(process.argv[3] ?? 7);

class FakeSocket {
  static OPEN = 1;
  static last = null;
  constructor(url) {
    this.url = url;
    this.readyState = 0;
    FakeSocket.last = this;
    queueMicrotask(() => {
      this.readyState = 1;
      this.onopen?.({});
    });
  }
  send(text) {
    const m = JSON.parse(text);
    const reply = (o) => this.onmessage?.({ data: JSON.stringify(o) });
    if (m.type === "subscribe") reply({ type: "subscribed", channel: m.channel, seq: 0, id: m.id });
  }
  close() {
    this.readyState = 3;
  }
}
globalThis.WebSocket = FakeSocket;
const { RealtimeClient } = await import("../../npm/dist/node.js");

const frames = Array.from({ length: N }, (_, i) =>
  JSON.stringify({
    type: "event", channel: "repo:bench/x", event: "push",
    data: { ref: "refs/heads/main", before: "abc123", after: "def456", pusher: "alice", commit_count: i },
    timestamp: 1700000000, event_id: `id-${i}`, seq: i + 1,
  }),
);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const ns = { raw: [], sdk: [] };
for (let r = 0; r < ROUNDS; r++) {
  let n = 0;
  const cb = () => n++;
  let t = performance.now();
  for (const data of frames) {
    const m = JSON.parse(data);
    if (m.type === "event") cb(m);
  }
  ns.raw.push(((performance.now() - t) * 1e6) / N);

  const client = new RealtimeClient("ws://fake/ws");
  n = 0;
  client.subscribe("repo:bench/x", cb);
  await new Promise((res) => setTimeout(res, 5));
  const ws = FakeSocket.last;
  ws.onmessage({ data: JSON.stringify({ type: "welcome", epoch: "e1", client_id: "c" }) });
  t = performance.now();
  for (const data of frames) ws.onmessage({ data });
  ns.sdk.push(((performance.now() - t) * 1e6) / N);
  if (n !== N) throw new Error(`sdk delivered ${n} of ${N}`);
  client.close();
}
const raw = median(ns.raw), sdk = median(ns.sdk);
console.log(JSON.stringify({ events: N, rounds: ROUNDS, raw_ns_per_event: Math.round(raw), sdk_ns_per_event: Math.round(sdk), sdk_extra_ns: Math.round(sdk - raw) }));
