// `shared: true` in headless Chromium against a real guts-hub: three tabs of one origin share
// one hub connection through the SharedWorker, each gets each event of its own subscriptions
// exactly once, and closing the tab that opened the connection loses nothing for the others.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { startHub, publish, until } from "./hub.mjs";
import { launch, screenshot } from "./browser.mjs";

const DIST = new URL("../../npm/dist/", import.meta.url).pathname;

// Each tab: a shared client; `window.sub(channel)` subscribes and records what arrives.
const PAGE = `<!doctype html><meta charset="utf-8"><title>shared</title><link rel="icon" href="data:,">
<script type="module">
  import { RealtimeClient } from "./pkg/guts_realtime.js";
  window.seen = [];
  window.states = [];
  window.client = new RealtimeClient("ws://" + location.host + "/ws", { shared: true });
  window.client.onState((s) => window.states.push(s.state));
  window.sub = (channel) => new Promise((ok) => {
    const h = window.client.subscribe(channel, (ev) => window.seen.push(channel + "#" + ev.data.i), {
      onState: (s) => s.state === "subscribed" && ok(),
    });
  });
  window.ready = true;
</script>`;

let hub, browser, webDir;

before(async () => {
  webDir = fs.mkdtempSync(path.join(os.tmpdir(), "guts-shared-"));
  fs.cpSync(DIST, path.join(webDir, "pkg"), { recursive: true });
  fs.writeFileSync(path.join(webDir, "shared.html"), PAGE);
  hub = await startHub({ webDir });
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await hub?.stop();
  fs.rmSync(webDir, { recursive: true, force: true });
});

const stats = async () => (await fetch(`${hub.http}/api/stats`)).json();
const seen = (p) => p.evaluate(() => window.seen.slice());

test("three tabs share one connection; each gets its own events once; the opener's close loses nothing", async () => {
  const tabs = [];
  for (let i = 0; i < 3; i++) {
    const p = i === 0 ? await browser.page() : await browser.newPage();
    await p.goto(`${hub.http}/shared.html`);
    await p.waitForFunction(() => window.ready === true);
    tabs.push(p);
  }
  // Tabs 0 and 1 follow one channel, tab 2 another.
  await tabs[0].evaluate(() => window.sub("repo:shared/a"));
  await tabs[1].evaluate(() => window.sub("repo:shared/a"));
  await tabs[2].evaluate(() => window.sub("repo:shared/b"));
  for (const p of tabs) await until(() => p.evaluate(() => window.states.includes("connected")), 10000, "each tab connected");
  const s = await stats();
  assert.equal(s.current_connections, 1, `one hub connection for three tabs: ${JSON.stringify(s)}`);
  assert.equal(s.current_subscriptions, 2, "one hub subscription per channel");

  for (let i = 0; i < 3; i++) await publish(hub, "repo:shared/a", "push", { i });
  await publish(hub, "repo:shared/b", "push", { i: 9 });
  await until(async () => (await seen(tabs[1])).length === 3 && (await seen(tabs[2])).length === 1, 10000, "the events");
  await new Promise((r) => setTimeout(r, 200));
  const a = ["repo:shared/a#0", "repo:shared/a#1", "repo:shared/a#2"];
  assert.deepEqual(await seen(tabs[0]), a);
  assert.deepEqual(await seen(tabs[1]), a);
  assert.deepEqual(await seen(tabs[2]), ["repo:shared/b#9"]);
  await screenshot(tabs[0], "shared-worker-tab.png");

  // The tab that opened the connection closes: the others keep receiving, on the same connection.
  await tabs[0].close();
  for (let i = 3; i < 5; i++) await publish(hub, "repo:shared/a", "push", { i });
  await until(async () => (await seen(tabs[1])).length === 5, 10000, "events after the opener closed");
  assert.deepEqual((await seen(tabs[1])).slice(3), ["repo:shared/a#3", "repo:shared/a#4"]);
  assert.equal((await stats()).current_connections, 1, "still one connection");
  // Its subscription is gone with it; the channel stays for tab 1.
  await until(async () => (await stats()).current_subscriptions === 2, 5000, "two subscriptions still held");
  // A tab that closes its client leaves the connection to the last one.
  await tabs[2].evaluate(() => window.client.close());
  await until(async () => (await stats()).current_subscriptions === 1, 5000, "tab 2's subscription dropped");
  await tabs[1].evaluate(() => window.client.close());
  await until(async () => (await stats()).current_connections === 0, 5000, "no connection once every tab closed");
});
