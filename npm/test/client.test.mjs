// The installed package in Node against a real guts-hub (GUTS_TEST_HUB=127.0.0.1:PORT,
// GUTS_TEST_PUBLISH_KEY): connect, subscribe, receive, unsubscribe, close — and exit cleanly
// (no timer left: node:test would hang otherwise). Node 20 needs --experimental-websocket.
import { test } from "node:test";
import assert from "node:assert/strict";
import init, { RealtimeClient } from "@guts/realtime";

const HUB = process.env.GUTS_TEST_HUB;
const KEY = process.env.GUTS_TEST_PUBLISH_KEY;

async function until(fn, ms, what) {
  const end = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test("init() is a no-op in Node", async () => {
  await init();
});

test("receives published events in Node", { skip: !HUB && "GUTS_TEST_HUB not set" }, async () => {
  const channel = `repo:node/pkg-${Date.now()}`;
  const client = new RealtimeClient(`ws://${HUB}/ws`);
  const states = [];
  const events = [];
  client.onState((s) => states.push(s.state));
  const sub = client.subscribe(channel, (ev) => events.push(ev), {
    onState: (s) => states.push(`sub:${s.state}`),
  });
  await until(() => states.includes("sub:subscribed"), 5000, "subscribed");
  for (const n of [1, 2]) {
    const res = await fetch(`http://${HUB}/api/publish`, {
      method: "POST",
      headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json" },
      body: JSON.stringify({ channel, event: "pr_opened", data: { number: n } }),
    });
    assert.equal(res.status, 200);
  }
  await until(() => events.length === 2, 5000, "2 events");
  assert.deepEqual(events.map((e) => [e.type, e.event, e.data.number]), [["event", "pr_opened", 1], ["event", "pr_opened", 2]]);
  sub.unsubscribe();
  client.close();
  assert.deepEqual(states.filter((s) => !s.startsWith("sub:")), ["connecting", "connected", "closed"]);
});
