// The demo page (examples/web, served by guts-hub --demo at /) in headless Chromium: events
// appear; kill and restart the hub → the page shows reconnecting, then live again (with the gap
// the restart caused). Screenshots go to artifacts/ (gitignored).
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { startHub, until } from "./hub.mjs";
import { launch, screenshot } from "./browser.mjs";

let hub, browser;
after(async () => {
  await browser?.close();
  await hub?.stop();
});

test("demo page: live events, then reconnecting and live again across a hub restart", async () => {
  hub = await startHub({ demo: true });
  const port = hub.port;
  browser = await launch();
  const page = await browser.page();
  await page.goto(`${hub.http}/`);
  const state = () => page.getAttribute("#state", "data-state");
  const rows = () => page.locator("#feed li.event").count();
  await until(async () => (await state()) === "connected", 10000, "connected");
  await until(async () => (await rows()) >= 2, 10000, "two events in the feed");
  const first = await page.locator("#feed li.event").first().innerText();
  assert.match(first, /repo:demo\/(app|api)/);
  await screenshot(page, "demo-live.png");

  await hub.stop();
  // Poll the text itself: each reconnecting spell lasts only until the next attempt.
  const reconnectingText = async () => /^reconnecting in \d/.test((await page.textContent("#state")) ?? "");
  await until(reconnectingText, 10000, "the page shows 'reconnecting in …'");
  await screenshot(page, "demo-reconnecting.png");

  hub = await startHub({ demo: true, port });
  await until(async () => (await state()) === "connected", 15000, "connected again");
  const before = await rows();
  await until(async () => (await rows()) > before, 10000, "new events after the restart");
  await until(async () => (await page.locator("#feed li.gap").count()) >= 1, 5000, "the gap row");
  await screenshot(page, "demo-reconnected.png");
  const seen = await page.evaluate(() => window.__demo.states);
  assert.ok(seen.indexOf("reconnecting") > seen.indexOf("connected"), seen.join(","));
  assert.equal(seen.at(-1), "connected");
});
