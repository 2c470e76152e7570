// Throughput benchmark: events/s delivered to a JS callback by @guts/realtime vs a raw
// WebSocket + JSON.parse loop, on the same Chromium page against the same guts-hub.
//
// Each round subscribes one consumer (raw or sdk) to a fresh channel, blocks the page's main
// thread while N events are published (so they queue up in the browser), then measures how fast
// the page drains them: (N - 1) / (time of the last callback - time of the first). Rounds
// alternate raw/sdk; the medians are reported, with the median of the per-round-pair ratios and
// how long publishing took (it must end well inside the block, or the drain measures the hub).
// Usage: node --experimental-websocket bench.mjs [N] [rounds] [block ms, default 3000]
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { startHub, until, PUBLISH_KEY } from "./hub.mjs";
import { launch } from "./browser.mjs";

const N = Number(process.argv[2] ?? 3000);
const ROUNDS = Number(process.argv[3] ?? 5);
const BLOCK_MS = Number(process.argv[4] ?? 3000);
const DIST = new URL("../../npm/dist/", import.meta.url).pathname;

const PAGE = `<!doctype html><meta charset="utf-8"><title>bench</title><link rel="icon" href="data:,">
<script type="module">
  import init, { RealtimeClient } from "./pkg/guts_realtime.js";
  await init();
  const url = "ws://" + location.host + "/ws";
  window.run = (mode, channel, n) => {
    const r = { n: 0, t0: 0, t1: 0, ready: false, close: null };
    const cb = (ev) => { const t = performance.now(); if (r.n === 0) r.t0 = t; r.t1 = t; r.n++; };
    if (mode === "raw") {
      const ws = new WebSocket(url);
      ws.onopen = () => ws.send(JSON.stringify({ type: "subscribe", channel, id: 1 }));
      ws.onmessage = (e) => {
        const m = JSON.parse(e.data);
        if (m.type === "event") cb(m); else if (m.type === "subscribed") r.ready = true;
      };
      r.close = () => ws.close();
    } else {
      const c = new RealtimeClient(url);
      c.subscribe(channel, cb, { onState: (s) => { if (s.state === "subscribed") r.ready = true; } });
      r.close = () => c.close();
    }
    window.r = r;
  };
  window.busy = (ms) => setTimeout(() => { const end = performance.now() + ms; while (performance.now() < end); }, 0);
  window.ready = true;
</script>`;

async function publishMany(hub, channel, n) {
  const ws = new WebSocket(hub.ws);
  let acks = 0;
  ws.onmessage = (e) => { if (String(e.data).includes('"published"')) acks++; };
  await new Promise((r) => (ws.onopen = r));
  ws.send(JSON.stringify({ type: "auth", token: PUBLISH_KEY }));
  for (let i = 0; i < n; i++) {
    ws.send(JSON.stringify({ type: "publish", channel, event: "push", data: { ref: "refs/heads/main", before: "abc123", after: "def456", pusher: "alice", commit_count: i } }));
  }
  await until(() => acks === n, 30000, "publish acks");
  ws.close();
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const webDir = fs.mkdtempSync(path.join(os.tmpdir(), "guts-bench-"));
fs.cpSync(DIST, path.join(webDir, "pkg"), { recursive: true });
fs.writeFileSync(path.join(webDir, "bench.html"), PAGE);
const hub = await startHub({ webDir });
const browser = await launch();
try {
  const page = await browser.page();
  await page.goto(`${hub.http}/bench.html`);
  await page.waitForFunction(() => window.ready === true);
  const rates = { raw: [], sdk: [] };
  const publishMs = [];
  for (let round = 0; round < ROUNDS; round++) {
    for (const mode of round % 2 ? ["sdk", "raw"] : ["raw", "sdk"]) {
      const channel = `repo:bench/${mode}-${round}`;
      await page.evaluate(([m, c, n]) => window.run(m, c, n), [mode, channel, N]);
      await until(() => page.evaluate(() => window.r.ready), 10000, "subscribed");
      await page.evaluate((ms) => window.busy(ms), BLOCK_MS);
      const t0 = performance.now();
      await publishMany(hub, channel, N);
      publishMs.push(performance.now() - t0);
      await until(() => page.evaluate((n) => window.r.n >= n, N), 30000, `${N} events (${mode})`);
      const r = await page.evaluate(() => { window.r.close(); return { n: window.r.n, ms: window.r.t1 - window.r.t0 }; });
      rates[mode].push(((r.n - 1) / r.ms) * 1000);
    }
  }
  const raw = median(rates.raw), sdk = median(rates.sdk);
  const out = {
    events_per_round: N, rounds: ROUNDS, browser: "Chromium (Debian, headless)",
    raw_events_per_s: Math.round(raw), sdk_events_per_s: Math.round(sdk), ratio: +(sdk / raw).toFixed(3),
    ratio_of_pairs: +median(rates.sdk.map((s, i) => s / rates.raw[i])).toFixed(3),
    raw_all: rates.raw.map(Math.round), sdk_all: rates.sdk.map(Math.round),
    block_ms: BLOCK_MS, publish_ms_max: Math.round(Math.max(...publishMs)),
  };
  console.log(JSON.stringify(out, null, 2));
} finally {
  await browser.close();
  await hub.stop();
  fs.rmSync(webDir, { recursive: true, force: true });
}
