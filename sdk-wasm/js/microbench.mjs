// Per-event cost of the SDK without a network: a fake WebSocket delivers N event frames to the
// client's onmessage handler as fast as possible, against a raw `JSON.parse` + callback loop over
// the same strings. It isolates the SDK's own work per event (decode, session, dispatch), which
// bench.mjs cannot separate from Chromium's per-message cost and the machine's noise.
// Usage: node microbench.mjs [N] [rounds] [node|browser] (browser: headless Chromium, one page).
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

const N = Number(process.argv[2] ?? 200000);
const ROUNDS = Number(process.argv[3] ?? 7);
const WHERE = process.argv[4] ?? "node";
const DIST = new URL("../../npm/dist/", import.meta.url).pathname;

// Runs where the package is loaded (Node or the page); `load` imports it after the fake socket
// is installed and returns the module.
async function run(N, ROUNDS, load) {
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
      if (m.type === "subscribe") {
        this.onmessage?.({ data: JSON.stringify({ type: "subscribed", channel: m.channel, seq: 0, id: m.id }) });
      }
    }
    close() {
      this.readyState = 3;
    }
  }
  globalThis.WebSocket = FakeSocket;
  const { RealtimeClient } = await load();
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
  return { raw_ns_per_event: Math.round(raw), sdk_ns_per_event: Math.round(sdk), sdk_extra_ns: Math.round(sdk - raw) };
}

let result;
if (WHERE === "browser") {
  const { startHub } = await import("./hub.mjs");
  const { launch } = await import("./browser.mjs");
  const webDir = fs.mkdtempSync(path.join(os.tmpdir(), "guts-micro-"));
  fs.cpSync(DIST, path.join(webDir, "pkg"), { recursive: true });
  fs.writeFileSync(path.join(webDir, "micro.html"), `<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,">
<script type="module">window.ready = true;</script>`);
  const hub = await startHub({ webDir });
  const browser = await launch();
  try {
    const page = await browser.page();
    await page.goto(`${hub.http}/micro.html`);
    await page.waitForFunction(() => window.ready === true);
    result = await page.evaluate(
      async ([src, N, ROUNDS]) => {
        const run = (0, eval)(`(${src})`);
        return run(N, ROUNDS, async () => {
          const m = await import("./pkg/guts_realtime.js");
          await m.default();
          return m;
        });
      },
      [run.toString(), N, ROUNDS],
    );
  } finally {
    await browser.close();
    await hub.stop();
    fs.rmSync(webDir, { recursive: true, force: true });
  }
} else {
  result = await run(N, ROUNDS, () => import("../../npm/dist/node.js"));
}
console.log(JSON.stringify({ where: WHERE, events: N, rounds: ROUNDS, ...result }));
