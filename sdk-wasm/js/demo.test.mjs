// The demo page (examples/web, served by guts-hub --demo at /) in headless Chromium: events
// appear; kill and restart the hub → the page shows reconnecting, then live again (with the gap
// the restart caused); two tabs logged in as two users see each other viewing the pull request
// and typing. Screenshots go to artifacts/ (gitignored).
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

test("demo page: two tabs as two users see who is viewing the pull request and who is typing", async () => {
  await browser?.close();
  await hub?.stop();
  hub = await startHub({ demo: true });
  browser = await launch();
  const alice = await browser.page();
  await alice.goto(`${hub.http}/?user=alice`);
  const viewers = (p) => p.evaluate(() => (window.__demo?.viewers ?? []).join(","));
  await until(async () => (await viewers(alice)) === "alice", 10000, "alice sees herself");
  const bob = await browser.newPage();
  await bob.goto(`${hub.http}/?user=bob`);
  await until(async () => (await viewers(bob)) === "alice,bob", 10000, "bob sees alice and himself");
  await until(async () => (await viewers(alice)) === "alice,bob", 10000, "alice sees bob join");
  assert.equal(await alice.textContent("#viewers"), "alicebob");
  // Bob types: alice sees it, bob does not see himself typing.
  await bob.fill("#comment", "Looks");
  await until(async () => (await alice.textContent("#typing")) === "bob is typing…", 10000, "bob is typing, on alice's tab");
  assert.equal(await bob.textContent("#typing"), "");
  await screenshot(alice, "demo-presence-typing.png");
  // He stops: the indicator goes after the "stopped" signal (2 s of no input).
  await until(async () => (await alice.textContent("#typing")) === "", 10000, "the indicator clears");
  // Bob closes his tab: alice sees him leave.
  await bob.close();
  await until(async () => (await viewers(alice)) === "alice", 10000, "bob left");
});
