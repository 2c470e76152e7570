// The React entry (npm/dist/react.js) in headless Chromium against a real guts-hub: a StrictMode
// app (its double mount) leaves exactly one hub connection and one subscription per channel,
// receives each event once, shows presence, and its unmounts leave no subscription and then no
// connection (GET /api/stats).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { build } from "esbuild";
import { startHub, publish, until, SECRET } from "./hub.mjs";
import { launch, screenshot } from "./browser.mjs";
import { sign } from "./jwt.mjs";

const DIST = new URL("../../npm/dist/", import.meta.url).pathname;
const HERE = new URL(".", import.meta.url).pathname;

// The app: a provider (as alice) around a feed of `repo:react/app` (useChannel) and the viewers
// of its pull request 1 (usePresence), all in StrictMode; window.app unmounts parts of it.
const APP = `
import { StrictMode, useState, createElement as h } from "react";
import { createRoot } from "react-dom/client";
import { RealtimeProvider, useChannel, useConnectionState, usePresence } from "@guts/realtime/react";
window.seen = [];
function Feed() {
  const [events, setEvents] = useState([]);
  useChannel("repo:react/app", (ev) => { window.seen.push(ev.data.i); setEvents((l) => [...l, ev.data.i]); });
  const viewers = usePresence("repo:react/app/prs/1");
  const state = useConnectionState();
  return h("div", null,
    h("p", { id: "state" }, state),
    h("p", { id: "viewers" }, viewers.map((m) => m.user + ":" + m.connections).join(",")),
    h("ul", { id: "events" }, events.map((i) => h("li", { key: i }, String(i)))));
}
function App({ url, token }) {
  const [feed, setFeed] = useState(true);
  const [provider, setProvider] = useState(true);
  window.app = { unmountFeed: () => setFeed(false), unmountProvider: () => setProvider(false) };
  return provider ? h(RealtimeProvider, { url, options: { token: () => token } }, feed ? h(Feed) : h("p", { id: "empty" }, "no feed")) : h("p", null, "gone");
}
createRoot(document.getElementById("root")).render(h(StrictMode, null, h(App, window.config)));
`;

let hub, browser, page, webDir;

before(async () => {
  webDir = fs.mkdtempSync(path.join(os.tmpdir(), "guts-react-"));
  await build({
    stdin: { contents: APP, resolveDir: HERE, loader: "js" },
    bundle: true,
    format: "esm",
    outfile: path.join(webDir, "app.js"),
    alias: { "@guts/realtime/react": path.join(DIST, "react.js"), "@guts/realtime": path.join(DIST, "guts_realtime.js") },
    nodePaths: [path.join(HERE, "node_modules")],
    define: { "process.env.NODE_ENV": '"development"' },
    logLevel: "error",
  });
  // The core finds its wasm next to the script that holds it.
  fs.copyFileSync(path.join(DIST, "guts_realtime_bg.wasm"), path.join(webDir, "guts_realtime_bg.wasm"));
  hub = await startHub({ webDir });
  const config = { url: hub.ws, token: sign(SECRET, { sub: "alice", exp: 4102444800 }) };
  fs.writeFileSync(
    path.join(webDir, "react.html"),
    `<!doctype html><meta charset="utf-8"><title>react</title><link rel="icon" href="data:,"><div id="root"></div>
<script>window.config = ${JSON.stringify(config)};</script><script type="module" src="./app.js"></script>`,
  );
  browser = await launch();
  page = await browser.page();
});

after(async () => {
  await browser?.close();
  await hub?.stop();
  fs.rmSync(webDir, { recursive: true, force: true });
});

const stats = async () => (await fetch(`${hub.http}/api/stats`)).json();

test("React under StrictMode: one connection, one subscription per channel, each event once, nothing left after unmount", async () => {
  await page.goto(`${hub.http}/react.html`);
  await until(async () => (await page.textContent("#state").catch(() => "")) === "connected", 10000, "connected");
  await until(async () => (await page.textContent("#viewers")) === "alice:1", 10000, "alice sees herself viewing");
  // The double mount settled: one client, and each hook's one subscription.
  await new Promise((r) => setTimeout(r, 300));
  let s = await stats();
  assert.equal(s.current_connections, 1, JSON.stringify(s));
  assert.equal(s.current_subscriptions, 2, JSON.stringify(s));
  for (let i = 0; i < 3; i++) await publish(hub, "repo:react/app", "push", { i });
  await until(async () => (await page.locator("#events li").count()) === 3, 10000, "three events rendered");
  await new Promise((r) => setTimeout(r, 200));
  assert.deepEqual(await page.evaluate(() => window.seen), [0, 1, 2], "each event once");
  await screenshot(page, "react-strictmode.png");

  await page.evaluate(() => window.app.unmountFeed());
  await until(async () => (await stats()).current_subscriptions === 0, 5000, "no subscription after the feed unmounts");
  assert.equal((await stats()).current_connections, 1, "the provider's client stays");
  await page.evaluate(() => window.app.unmountProvider());
  await until(async () => (await stats()).current_connections === 0, 5000, "no connection after the provider unmounts");
});
