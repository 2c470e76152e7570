// The operator's admin page (guts-hub GET /admin, Basic auth with the publish key) in headless
// Chromium against a real guts-hub: the page and its snapshot API refuse missing or wrong
// credentials; with a few WebSocket clients (subscribers, a presence member, an invalid
// subscribe, a normal close) and a burst of events, the page shows the live connection count,
// the top channels, the close codes, the error codes, presence and event rates, and really draws
// its four charts. Screenshot: artifacts/admin.png (gitignored).
import { test, after } from "node:test";
import assert from "node:assert/strict";
import WebSocket from "ws";
import { startHub, publish, until, SECRET, PUBLISH_KEY } from "./hub.mjs";
import { launch, screenshot } from "./browser.mjs";
import { sign } from "./jwt.mjs";

const APP = "repo:demo/app";
const API = "repo:demo/api";
const ITEM = "repo:demo/app/prs/1";
const basic = (user, password) => "Basic " + Buffer.from(`${user}:${password}`).toString("base64");

let hub, browser;
const sockets = [];
after(async () => {
  for (const c of sockets) c.ws.terminate();
  await browser?.close();
  await hub?.stop();
});

/** A WebSocket client (the `ws` package) that keeps every frame it receives. */
async function connect() {
  const ws = new WebSocket(hub.ws);
  const frames = [];
  const c = {
    ws,
    frames,
    closed: null,
    send: (frame) => ws.send(JSON.stringify(frame)),
    /** Waits for a received frame matching `pred` (bounded). */
    frame: (pred, what) => until(() => frames.find(pred), 5000, what),
  };
  sockets.push(c);
  ws.on("message", (data) => frames.push(JSON.parse(String(data))));
  ws.on("close", (code) => (c.closed = code));
  ws.on("error", () => {});
  await c.frame((f) => f.type === "welcome", "welcome");
  return c;
}

async function subscribe(c, channel, extra = {}) {
  const id = `sub-${channel}`;
  c.send({ type: "subscribe", channel, ...extra, id });
  await c.frame((f) => f.type === "subscribed" && f.id === id, `subscribed to ${channel}`);
}

test("admin page: Basic auth, then live connections, channels, closes, errors, presence, rates and charts", async () => {
  hub = await startHub();

  // 1. Without credentials, or with a wrong password: 401 with a Basic challenge.
  let res = await fetch(`${hub.http}/admin`);
  assert.equal(res.status, 401);
  assert.match(res.headers.get("www-authenticate") ?? "", /^Basic/);
  assert.match(res.headers.get("www-authenticate"), /realm="guts-hub admin"/);
  res = await fetch(`${hub.http}/admin`, { headers: { authorization: basic("admin", "wrong") } });
  assert.equal(res.status, 401);
  res = await fetch(`${hub.http}/admin/api/snapshot`);
  assert.equal(res.status, 401);
  assert.match(res.headers.get("www-authenticate") ?? "", /^Basic/);
  res = await fetch(`${hub.http}/admin/api/snapshot`, { headers: { authorization: basic("admin", "wrong") } });
  assert.equal(res.status, 401);
  // With the publish key (any user name): the page, and a snapshot of the documented shape.
  res = await fetch(`${hub.http}/admin`, { headers: { authorization: basic("ops", PUBLISH_KEY) } });
  assert.equal(res.status, 200);
  assert.match(res.headers.get("content-type") ?? "", /^text\/html/);
  assert.match(await res.text(), /guts-hub admin/);
  res = await fetch(`${hub.http}/admin/api/snapshot`, { headers: { authorization: basic("ops", PUBLISH_KEY) } });
  assert.equal(res.status, 200);
  assert.match(res.headers.get("content-type") ?? "", /json/);
  const first = await res.json();
  for (const key of ["version", "epoch", "uptime_secs", "ready", "draining", "connections", "subscriptions",
    "events_published", "frames_delivered", "channels", "closes", "errors", "presence"]) {
    assert.ok(key in first, `snapshot has ${key}: ${JSON.stringify(first)}`);
  }

  // 2. Clients: 3 on APP, 1 on API, alice present on ITEM, one invalid subscribe, one normal close.
  const app = [await connect(), await connect(), await connect()];
  for (const c of app) await subscribe(c, APP);
  const api = await connect();
  await subscribe(api, API);
  const alice = await connect();
  alice.send({ type: "auth", token: sign(SECRET, { sub: "alice", exp: 4102444800 }), id: "auth" });
  await alice.frame((f) => f.type === "authenticated" && f.id === "auth", "alice authenticated");
  await subscribe(alice, ITEM, { presence: true });
  await alice.frame((f) => f.type === "presence" && f.channel === ITEM, "alice's presence list");
  const bad = await connect();
  bad.send({ type: "subscribe", channel: "repo:demo", id: "bad" });
  const err = await bad.frame((f) => f.type === "error" && f.id === "bad", "the invalid_channel error");
  assert.equal(err.code, "invalid_channel");
  const quitter = await connect();
  quitter.ws.close(1000, "bye");
  await until(() => quitter.closed !== null, 5000, "the normal close");
  assert.equal(quitter.closed, 1000);
  const open = 6; // app ×3, api, alice, bad
  const subscriptions = 5; // app ×3, api, alice's item
  for (let i = 0; i < 3; i++) await publish(hub, APP, "push", { i });
  await publish(hub, API, "push", { i: 0 });
  await until(() => app.every((c) => c.frames.filter((f) => f.type === "event").length === 3), 5000, "APP events delivered");

  // 3. The page, with the publish key as the Basic password.
  browser = await launch({ httpCredentials: { username: "admin", password: PUBLISH_KEY } });
  const page = await browser.page();
  const nav = await page.goto(`${hub.http}/admin?interval=200`);
  assert.equal(nav.status(), 200);

  // 4. What the page shows.
  const text = (sel) => page.evaluate((s) => document.querySelector(s)?.textContent.trim() ?? null, sel);
  const cell = (table, key, n) => text(`#${table} tr[data-key="${key}"] td:nth-child(${n})`);
  const shows = (sel, want, what) => until(async () => (await text(sel)) === want, 10000, `${what}: ${sel} = ${want}`);
  await shows("#status", "live", "the page polls the snapshot");
  await shows("#value-connections", String(open), "open connections");
  await shows("#value-subscriptions", String(subscriptions), "subscriptions");
  // A stream's subscribers count its item channels' too: app ×3 and alice's pull request.
  await shows(`#top-subscribers tr[data-key="${APP}"] td:nth-child(2)`, "4", "APP subscribers");
  assert.equal(await cell("top-subscribers", APP, 1), APP);
  await shows(`#top-subscribers tr[data-key="${API}"] td:nth-child(2)`, "1", "API subscribers");
  await shows('#closes tr[data-key="1000"] td:nth-child(3)', "1", "one normal close");
  assert.equal(await cell("closes", "1000", 2), "normal");
  await shows('#errors tr[data-key="invalid_channel"] td:nth-child(2)', "1", "one invalid_channel error");
  await shows(`#presence tr[data-key="${ITEM}"] td:nth-child(2)`, "alice (1)", "alice present");
  assert.equal(await cell("presence", ITEM, 3), "1");
  assert.equal(await text("#state"), "ready");
  assert.equal(await text("#version"), first.version);
  assert.equal(await text("#epoch"), first.epoch);

  // A burst of events on APP while the page polls: events/s and deliveries/s rise, APP leads.
  let publishing = true;
  const burst = (async () => {
    for (let i = 0; publishing && i < 2000; i++) {
      await publish(hub, APP, "push", { burst: i });
      await new Promise((r) => setTimeout(r, 5));
    }
  })();
  try {
    const num = async (sel) => Number.parseFloat((await text(sel)) ?? "NaN");
    await until(async () => (await num("#value-events")) > 0, 10000, "events/s > 0");
    await until(async () => (await num("#value-deliveries")) > 0, 10000, "deliveries/s > 0");
    await until(async () => {
      const lead = await page.evaluate(() => {
        const tr = document.querySelector("#top-events tbody tr");
        return tr && { key: tr.dataset.key, rate: Number.parseFloat(tr.cells[1].textContent) };
      });
      return lead?.key === APP && lead.rate > 0;
    }, 10000, "APP first in top-events, with a rate > 0");
    assert.match(await cell("top-events", APP, 2), /^\d[\d,]*\.\d$/, "events/s with one decimal");
    // A few more points in the charts before the screenshot.
    const polls = await page.evaluate(() => window.__admin.snapshots);
    await until(() => page.evaluate((n) => window.__admin.snapshots >= n + 10, polls), 10000, "ten more snapshots");
    await screenshot(page, "admin.png");
  } finally {
    publishing = false;
    await burst;
  }

  // Every chart is drawn: many pixels of its series colour (data-color), not only a blank canvas.
  const drawn = await page.evaluate(() => [...document.querySelectorAll("canvas")].map((c) => {
    const [r, g, b] = c.dataset.color.match(/[0-9a-f]{2}/gi).map((h) => parseInt(h, 16));
    const px = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
    let line = 0, painted = 0;
    for (let i = 0; i < px.length; i += 4) {
      if (px[i + 3] > 0) painted++;
      if (px[i + 3] >= 160 && Math.abs(px[i] - r) + Math.abs(px[i + 1] - g) + Math.abs(px[i + 2] - b) <= 60) line++;
    }
    return { id: c.id, width: c.width, line, painted };
  }));
  assert.deepEqual(drawn.map((d) => d.id).sort(),
    ["chart-connections", "chart-deliveries", "chart-events", "chart-subscriptions"]);
  for (const d of drawn) {
    assert.ok(d.width > 0 && d.line >= d.width / 2, `${d.id} has its line drawn: ${JSON.stringify(d)}`);
  }

  const admin = await page.evaluate(() => ({ snapshots: window.__admin.snapshots, last: window.__admin.last }));
  assert.ok(admin.snapshots >= 2, `snapshots: ${admin.snapshots}`);
  assert.equal(admin.last.connections, open);
});
