// Playwright tests of the built package (npm/dist) in headless Chromium against a real guts-hub:
// subscribe and receive, hub restart → reconnect + gap, auth failure → terminal state, page
// lifecycle events, and close() leaving no listener or timer behind.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { startHub, publish, until, SECRET, PUBLISH_KEY } from "./hub.mjs";
import { launch, screenshot } from "./browser.mjs";
import { sign } from "./jwt.mjs";

const DIST = new URL("../../npm/dist/", import.meta.url).pathname;

// A page that counts the listeners and timers added through window/document/setTimeout, then
// loads the package and exposes it.
const PAGE = `<!doctype html><meta charset="utf-8"><title>sdk test</title><link rel="icon" href="data:,">
<script>
  const track = { listeners: [], timers: new Set() };
  window.__track = track;
  for (const [name, t] of [["window", window], ["document", document]]) {
    const add = t.addEventListener.bind(t), rem = t.removeEventListener.bind(t);
    t.addEventListener = (type, fn, o) => { track.listeners.push([name, type, fn]); add(type, fn, o); };
    t.removeEventListener = (type, fn, o) => {
      const i = track.listeners.findIndex(([n, ty, f]) => n === name && ty === type && f === fn);
      if (i >= 0) track.listeners.splice(i, 1);
      rem(type, fn, o);
    };
  }
  const st = window.setTimeout.bind(window), ct = window.clearTimeout.bind(window);
  window.setTimeout = (fn, ms, ...a) => { const id = st((...x) => { track.timers.delete(id); fn(...x); }, ms, ...a); track.timers.add(id); return id; };
  window.clearTimeout = (id) => { track.timers.delete(id); ct(id); };
</script>
<script type="module">
  import init, * as sdk from "./pkg/guts_realtime.js";
  await init();
  window.sdk = sdk;
  window.log = [];
  window.ready = true;
</script>`;

let hub, browser, page, webDir, port;

before(async () => {
  webDir = fs.mkdtempSync(path.join(os.tmpdir(), "guts-web-"));
  fs.cpSync(DIST, path.join(webDir, "pkg"), { recursive: true });
  fs.writeFileSync(path.join(webDir, "test.html"), PAGE);
  hub = await startHub({ webDir });
  port = hub.port;
  browser = await launch();
  page = await browser.page();
});

after(async () => {
  await browser?.close();
  await hub?.stop();
  fs.rmSync(webDir, { recursive: true, force: true });
});

async function fresh() {
  await page.goto(`${hub.http}/test.html`);
  await page.waitForFunction(() => window.ready === true);
}

/** Creates a client in the page that logs states, events, sub states and gaps to window.log. */
async function client(opts = "{ backoff: { base: 100, max: 500 } }", channel = null) {
  await page.evaluate(([url, opts, channel]) => {
    window.client = new window.sdk.RealtimeClient(url, eval(`(${opts})`));
    window.client.onState((s) => window.log.push({ k: "state", ...s }));
    if (channel) {
      window.sub = window.client.subscribe(channel, (ev) => window.log.push({ k: "event", ev }), {
        onState: (s) => window.log.push({ k: "sub", ...s }),
        onGap: (g) => window.log.push({ k: "gap", ...g }),
      });
    }
  }, [hub.ws, opts, channel]);
}

const log = () => page.evaluate(() => window.log);
const states = async () => (await log()).filter((e) => e.k === "state").map((e) => e.state);
const events = async () => (await log()).filter((e) => e.k === "event").map((e) => e.ev);

test("subscribes and receives events, in order, as plain objects", async () => {
  await fresh();
  await client(undefined, "repo:pw/recv");
  await until(async () => (await log()).some((e) => e.k === "sub" && e.state === "subscribed"), 10000, "subscribed");
  for (let i = 0; i < 3; i++) await publish(hub, "repo:pw/recv", "push", { i });
  await until(async () => (await events()).length === 3, 10000, "3 events");
  const evs = await events();
  assert.deepEqual(evs.map((e) => e.data.i), [0, 1, 2]);
  assert.deepEqual(evs.map((e) => e.type), ["event", "event", "event"]);
  assert.equal(evs[0].channel, "repo:pw/recv");
  assert.ok(evs[1].seq === evs[0].seq + 1 && evs[2].seq === evs[1].seq + 1);
  assert.deepEqual((await states()).slice(0, 2), ["connecting", "connected"]);
  await page.evaluate(() => window.client.close());
});

test("hub restart: reconnecting, then connected, then a gap (new epoch), then live again", async () => {
  await fresh();
  await client(undefined, "repo:pw/restart");
  await until(async () => (await log()).some((e) => e.k === "sub" && e.state === "subscribed"), 10000, "subscribed");
  await publish(hub, "repo:pw/restart", "push", { before: true });
  await until(async () => (await events()).length === 1, 10000, "first event");
  await hub.stop();
  await until(async () => (await states()).includes("reconnecting"), 10000, "reconnecting");
  hub = await startHub({ webDir, port });
  await until(async () => (await log()).some((e) => e.k === "gap"), 15000, "gap");
  const l = await log();
  const gap = l.find((e) => e.k === "gap");
  assert.equal(gap.channel, "repo:pw/restart");
  assert.equal(gap.reason, "epoch_changed");
  assert.equal(gap.lastSeq, (await events())[0].seq);
  const st = l.filter((e) => e.k === "state").map((e) => e.state);
  assert.ok(st.lastIndexOf("connected") > st.indexOf("reconnecting"), st.join(","));
  await publish(hub, "repo:pw/restart", "push", { after: true });
  await until(async () => (await events()).length === 2, 10000, "event after restart");
  assert.equal((await events())[1].data.after, true);
  await page.evaluate(() => window.client.close());
});

test("a rejected token ends in a terminal closed state with code 4001, and nothing retries", async () => {
  await fresh();
  await client(`{ token: async () => "not-a-valid-token", backoff: { base: 50, max: 100 } }`);
  await until(async () => (await states()).includes("closed"), 10000, "closed");
  await new Promise((r) => setTimeout(r, 500));
  const st = (await log()).filter((e) => e.k === "state");
  assert.deepEqual(st.map((s) => s.state), ["connecting", "authenticating", "closed"]);
  assert.equal(st[2].code, 4001);
  assert.match(st[2].reason, /^unauthenticated/);
  assert.equal(await page.evaluate(() => window.client.state), "closed");
  await page.evaluate(() => window.client.close());
});

test("a valid token authenticates", async () => {
  await fresh();
  const token = sign(SECRET, { sub: "alice", exp: Math.floor(Date.now() / 1000) + 600 });
  await client(`{ token: () => Promise.resolve(${JSON.stringify(token)}) }`, "user:alice");
  await until(async () => (await log()).some((e) => e.k === "sub" && e.state === "subscribed"), 10000, "user channel subscribed");
  assert.deepEqual((await states()).slice(0, 3), ["connecting", "authenticating", "connected"]);
  await page.evaluate(() => window.client.close());
});

// Tokens minted in Node for the page's token provider, which counts its calls: alice's tokens
// live `window.lifetime` seconds; while `window.failing` is set the provider throws (transient).
let minting = false;
async function counting() {
  if (!minting) {
    await page.exposeFunction("__mint", (lifetime) =>
      sign(SECRET, { sub: "alice", exp: Math.floor(Date.now() / 1000) + lifetime }));
    minting = true;
  }
  await page.evaluate(() => {
    window.fetches = 0;
    window.lifetime = 3;
    window.failing = false;
    window.provider = async () => {
      window.fetches++;
      if (window.failing) throw new Error("token service down");
      return window.__mint(window.lifetime);
    };
  });
}

test("the token is refreshed on the open socket before it expires, and fetched again after a 4002", async () => {
  await fresh();
  await counting();
  await client(`{ token: () => window.provider(), backoff: { base: 100, max: 300 } }`, "user:alice");
  await until(async () => (await log()).some((e) => e.k === "sub" && e.state === "subscribed"), 10000, "subscribed");
  assert.equal(await page.evaluate(() => window.fetches), 1);
  // A 3 s token is refreshed a second after each authentication, on the same socket.
  await new Promise((r) => setTimeout(r, 2600));
  const refreshed = await page.evaluate(() => window.fetches);
  assert.ok(refreshed >= 2 && refreshed <= 4, `fetches: ${refreshed}`);
  assert.deepEqual(await states(), ["connecting", "authenticating", "connected"]);
  await publish(hub, "user:alice", "push", { n: 1 });
  await until(async () => (await events()).length === 1, 10000, "event on the refreshed socket");
  // The token service fails: at expiry the hub closes 4002, the client asks again and
  // reconnects once it gets a token, recovering what it missed.
  await page.evaluate(() => { window.failing = true; });
  await until(async () => (await log()).some((e) => e.k === "state" && e.code === 4002), 10000, "closed 4002");
  const closed = (await log()).find((e) => e.k === "state" && e.code === 4002);
  assert.equal(closed.state, "reconnecting", "4002 reconnects");
  await publish(hub, "user:alice", "push", { n: 2 });
  const before = await page.evaluate(() => window.fetches);
  await until(async () => (await page.evaluate(() => window.fetches)) > before, 5000, "asked again");
  await page.evaluate(() => { window.failing = false; });
  await until(async () => (await events()).length === 2, 10000, "the missed event, recovered");
  assert.deepEqual((await events()).map((e) => e.data.n), [1, 2]);
  assert.equal((await log()).filter((e) => e.k === "gap").length, 0);
  await page.evaluate(() => window.client.close());
});

test("a revoked subscription fails with the reason and is not subscribed again", async () => {
  await fresh();
  await counting();
  await page.evaluate(() => { window.lifetime = 600; });
  await client(`{ token: () => window.provider() }`, "user:alice");
  await until(async () => (await log()).some((e) => e.k === "sub" && e.state === "subscribed"), 10000, "subscribed");
  const res = await fetch(`${hub.http}/api/unsubscribe`, {
    method: "POST",
    headers: { authorization: `Bearer ${PUBLISH_KEY}`, "content-type": "application/json" },
    body: JSON.stringify({ user: "alice", channel: "user:alice" }),
  });
  assert.equal(res.status, 200);
  await until(async () => (await log()).some((e) => e.k === "sub" && e.state === "failed"), 10000, "failed");
  const failed = (await log()).find((e) => e.k === "sub" && e.state === "failed");
  assert.equal(failed.message, "revoked");
  assert.equal(failed.code, "forbidden");
  assert.equal(await page.evaluate(() => window.sub.state), "failed");
  await publish(hub, "user:alice", "push", {});
  await new Promise((r) => setTimeout(r, 300));
  assert.equal((await events()).length, 0);
  await page.evaluate(() => window.client.close());
});

test("page lifecycle: offline closes, online reconnects at once, pagehide releases, pageshow resumes", async () => {
  await fresh();
  await client(`{ backoff: { base: 60000, max: 60000 } }`, "repo:pw/life");
  await until(async () => (await states()).includes("connected"), 10000, "connected");
  await page.evaluate(() => window.dispatchEvent(new Event("offline")));
  let l = (await log()).filter((e) => e.k === "state");
  assert.equal(l.at(-1).state, "reconnecting");
  assert.equal(l.at(-1).reason, "network offline");
  // The backoff would wait up to 60 s; `online` reconnects now.
  await page.evaluate(() => window.dispatchEvent(new Event("online")));
  await until(async () => (await states()).at(-1) === "connected", 5000, "connected after online");
  await page.evaluate(() => window.dispatchEvent(new Event("pagehide")));
  l = (await log()).filter((e) => e.k === "state");
  assert.equal(l.at(-1).reason, "page hidden");
  await page.evaluate(() => window.dispatchEvent(new Event("pageshow")));
  await until(async () => (await states()).at(-1) === "connected", 5000, "connected after pageshow");
  // Visible again: a liveness ping, and the link stays up.
  await page.evaluate(() => document.dispatchEvent(new Event("visibilitychange")));
  await publish(hub, "repo:pw/life", "push", {});
  await until(async () => (await events()).length === 1, 5000, "event after the lifecycle dance");
  assert.equal((await states()).at(-1), "connected");
  await page.evaluate(() => window.client.close());
});

test("close() removes every listener and timer it added and detaches the socket", async () => {
  await fresh();
  // (Playwright adds listeners of its own: compare with what was there before the client.)
  const base = await page.evaluate(() => ({ l: window.__track.listeners.length, t: window.__track.timers.size }));
  const before = await page.evaluate(() => window.__track.listeners.map(([n, t]) => `${n}:${t}`));
  await client(undefined, "repo:pw/close");
  await until(async () => (await log()).some((e) => e.k === "sub" && e.state === "subscribed"), 10000, "subscribed");
  const during = await page.evaluate(() => ({
    l: window.__track.listeners.map(([n, t]) => `${n}:${t}`),
    t: window.__track.timers.size,
  }));
  const added = during.l.filter((x, i) => i >= before.length || x !== before[i]).sort();
  assert.deepEqual(added, ["document:visibilitychange", "window:offline", "window:online", "window:pagehide", "window:pageshow"]);
  assert.ok(during.t >= 1, "a heartbeat timer is armed while connected");
  await page.evaluate(() => window.client.close());
  const afterClose = await page.evaluate(() => ({ l: window.__track.listeners.length, t: window.__track.timers.size }));
  assert.deepEqual(afterClose, base);
  // Nothing fires later either: no state change, no new timer.
  const n = (await log()).length;
  await new Promise((r) => setTimeout(r, 300));
  await publish(hub, "repo:pw/close", "push", {});
  await new Promise((r) => setTimeout(r, 300));
  assert.equal((await log()).length, n);
  assert.equal((await states()).at(-1), "closed");
  assert.deepEqual(await page.evaluate(() => ({ l: window.__track.listeners.length, t: window.__track.timers.size })), base);
  await screenshot(page, "sdk-test-page.png");
});

test("without init(): a client made at once works; one whose wasm cannot be loaded closes and says why", async () => {
  // A copy of the package whose wasm is missing (as with a bundler that did not emit it).
  fs.mkdirSync(path.join(webDir, "broken"), { recursive: true });
  fs.copyFileSync(path.join(DIST, "guts_realtime.js"), path.join(webDir, "broken", "guts_realtime.js"));
  await page.goto(`${hub.http}/test.html`);
  const closed = await page.evaluate(async () => {
    const { RealtimeClient } = await import("./broken/guts_realtime.js");
    const c = new RealtimeClient("ws://" + location.host + "/ws");
    const sub = c.subscribe("repo:pw/broken", () => {}); // queued meanwhile
    const why = await c.ready().then(() => "connected", (e) => e.message);
    return { why, state: c.state, sub: sub.state };
  });
  assert.match(closed.why, /^the wasm could not be loaded \(.*\); see "Troubleshooting"/);
  assert.equal(closed.state, "closed");
});

test("listeners come off by their remover or an AbortSignal; ready() promises", async () => {
  await fresh();
  const r = await page.evaluate(async (url) => {
    const c = new window.sdk.RealtimeClient(url);
    const seen = { a: 0, b: 0, c: 0, events: 0 };
    const off = c.onState(() => seen.a++);
    const ac = new AbortController();
    c.onState(() => seen.b++, { signal: ac.signal });
    c.onState(() => seen.c++);
    off();
    ac.abort();
    await c.ready();
    const subAc = new AbortController();
    const sub = c.subscribe("repo:pw/abort", () => seen.events++, { signal: subAc.signal });
    await sub.ready();
    subAc.abort();
    const state = sub.state;
    c.close();
    return { seen, state };
  }, hub.ws);
  assert.deepEqual(r.seen, { a: 0, b: 0, c: 3, events: 0 }, "only the listener still on saw connecting, connected, closed");
  assert.equal(r.state, "unsubscribed");
});
