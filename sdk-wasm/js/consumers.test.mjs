// The packed package as its users get it (GUTS_PACKAGE_TGZ: the `npm pack` tarball, made by
// scripts/test-wasm.sh), installed into the apps of consumers/: built by Vite (dev server and
// production build) and by webpack 5 and run in headless Chromium, and run by Node 20 with the
// `ws` package; each receives events from a real guts-hub.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { startHub, publish, until } from "./hub.mjs";
import { launch, screenshot } from "./browser.mjs";

const APPS = new URL("./consumers/", import.meta.url).pathname;
const TGZ = process.env.GUTS_PACKAGE_TGZ;
if (!TGZ) throw new Error("GUTS_PACKAGE_TGZ must name the packed package (scripts/test-wasm.sh)");

const npm = (...args) => execFileSync("npm", [...args, "--no-audit", "--no-fund", "--loglevel=error"], { cwd: APPS, stdio: "inherit" });
const run = (bin, ...args) => execFileSync(process.execPath, [path.join(APPS, "node_modules", bin), ...args], { cwd: APPS, stdio: "inherit" });

let browser;
const hubs = [];
const children = [];

before(async () => {
  npm("ci");
  npm("install", "--no-save", TGZ);
  browser = await launch();
});

after(async () => {
  for (const c of children) c.kill("SIGKILL");
  await browser?.close();
  for (const h of hubs) await h.stop();
});

async function hub(webDir) {
  const h = await startHub({ webDir });
  hubs.push(h);
  return h;
}

/**
 * Opens `url` (with `?hub=&channel=`) in a tab, publishes three events, checks they arrive once,
 * in order; then the same with `shared: true` (through the package's SharedWorker, as the
 * bundler emitted it).
 */
async function receives(pageUrl, h, name) {
  await receivesIn(pageUrl, h, name, "");
  await receivesIn(pageUrl, h, `${name}-shared`, "&shared=1");
}

async function receivesIn(pageUrl, h, name, extra) {
  const channel = `repo:consumer/${name}`;
  const page = await browser.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  page.on("console", (m) => m.type() === "error" && errors.push(m.text()));
  await page.goto(`${pageUrl}?hub=${h.addr}&channel=${encodeURIComponent(channel)}${extra}`);
  await until(() => page.evaluate(() => window.subscribed === true), 20000, `${name}: subscribed`);
  for (let i = 0; i < 3; i++) await publish(h, channel, "push", { i });
  await until(async () => (await page.evaluate(() => window.seen.length)) === 3, 10000, `${name}: three events`);
  await new Promise((r) => setTimeout(r, 200));
  assert.deepEqual(await page.evaluate(() => window.seen), [0, 1, 2], name);
  assert.deepEqual(errors, [], `${name}: page errors`);
  await screenshot(page, `consumer-${name}.png`);
  await page.close();
}

/** A free TCP port on 127.0.0.1. */
async function freePort() {
  const srv = net.createServer().listen(0, "127.0.0.1");
  await new Promise((r) => srv.once("listening", r));
  const { port } = srv.address();
  await new Promise((r) => srv.close(r));
  return port;
}

test("Vite: production build", async () => {
  run("vite/bin/vite.js", "build", "--logLevel", "warn");
  const h = await hub(path.join(APPS, "dist"));
  await receives(`${h.http}/index.html`, h, "vite-build");
});

test("Vite: dev server", async () => {
  const h = await hub();
  const port = await freePort();
  const dev = spawn(process.execPath, [path.join(APPS, "node_modules/vite/bin/vite.js"), "--port", String(port), "--strictPort", "--host", "127.0.0.1"], { cwd: APPS, stdio: ["ignore", "pipe", "inherit"] });
  children.push(dev);
  dev.stdout.resume();
  // (Polled, not read from its banner, which Vite words differently under CI=true.)
  const up = () => fetch(`http://127.0.0.1:${port}/`).then((r) => r.ok, () => false);
  await until(up, 30000, "the Vite dev server");
  await receives(`http://127.0.0.1:${port}/`, h, "vite-dev");
  dev.kill("SIGKILL");
});

test("webpack 5: production build", async () => {
  run("webpack-cli/bin/cli.js", "--no-stats");
  const dir = path.join(APPS, "dist-webpack");
  fs.writeFileSync(path.join(dir, "index.html"), `<!doctype html><meta charset="utf-8"><title>webpack</title><link rel="icon" href="data:,"><ul id="events"></ul><script src="./main.js"></script>`);
  const h = await hub(dir);
  await receives(`${h.http}/index.html`, h, "webpack");
});

test("Node 20 with the ws package, no flag", async () => {
  const h = await hub();
  const channel = "repo:consumer/node";
  const child = spawn(process.execPath, [path.join(APPS, "node.mjs"), h.addr, channel, "3"], { cwd: APPS, stdio: ["ignore", "pipe", "inherit"] });
  children.push(child);
  let out = "";
  child.stdout.on("data", (d) => (out += d));
  await until(() => out.includes("subscribed"), 10000, "node: subscribed");
  for (let i = 0; i < 3; i++) await publish(h, channel, "push", { i });
  const code = await new Promise((r) => child.on("exit", r));
  assert.equal(code, 0, out);
  assert.deepEqual(out.trim().split("\n"), ["subscribed", "0", "1", "2"]);
});
