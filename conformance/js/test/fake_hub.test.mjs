// The fake hub against the real @guts/realtime client (npm/dist, built by scripts; override with
// GUTS_REALTIME_CLIENT=path/to/node.js): every scenario of conformance/scenarios/ must pass, and
// what the application saw must be the scenario's `client_expects`. Then clients that break the
// protocol, which the hub must fail at the right step.
//
// The harness contract (the same for every SDK's harness): connect to the hub at `client.url_path`
// with `client.token` (null: anonymous) and subscribe to each channel of `client.subscribe`.
// Record, per channel, the seq of every event delivered to the application and the number of gap
// reports, and the connection state. As soon as they equal `client_expects` (`events` and `gaps`
// default to [] and 0 for a channel not listed), the application closes the client (unless its
// state is already `closed`) — that close is what a closing `expect_close {code: 1000}` step waits
// for. The test passes when the hub's result is ok and the expectations were met.
import { test } from "node:test";
import assert from "node:assert/strict";
import { once } from "node:events";
import { spawn } from "node:child_process";
import { readdirSync } from "node:fs";
import { isDeepStrictEqual } from "node:util";
import WebSocket from "ws";
import { loadScenario, startFakeHub } from "../fake_hub.mjs";

const CLIENT = process.env.GUTS_REALTIME_CLIENT ?? new URL("../../../npm/dist/node.js", import.meta.url).pathname;
const { RealtimeClient } = await import(CLIENT);
const SCENARIOS = new URL("../../scenarios/", import.meta.url);
const FILES = readdirSync(SCENARIOS).filter((f) => f.endsWith(".json")).sort();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Runs the SDK as the scenario's `client` section says, against `url` (the hub's). Returns
 * `{ expected, client, outcome(ms) }`: `outcome` resolves to what the application saw, at the
 * moment it met the expectations or after `ms` more.
 */
function drive(scenario, url) {
  const spec = scenario.client ?? {};
  const want = scenario.client_expects ?? {};
  const channels = spec.subscribe ?? [];
  const perChannel = (f) => Object.fromEntries(channels.map((c) => [c, f(c)]));
  const expected = {
    events: perChannel((c) => want.events?.[c] ?? []),
    gaps: perChannel((c) => want.gaps?.[c] ?? 0),
    state: want.final_state ?? "connected",
  };
  const seen = { events: perChannel(() => []), gaps: perChannel(() => 0), state: "idle" };
  let atMet = null;
  let met;
  const metP = new Promise((r) => (met = r));
  const client = new RealtimeClient(new URL(spec.url_path ?? "/ws", url).href, {
    WebSocket,
    ...(spec.token != null && { token: () => spec.token }),
  });
  const check = () => {
    if (atMet || !isDeepStrictEqual(seen, expected)) return;
    atMet = structuredClone(seen);
    met();
    if (client.state != "closed") client.close(); // the application is done
  };
  client.onState((s) => {
    seen.state = s.state;
    check();
  });
  for (const c of channels) {
    const onGap = () => (seen.gaps[c]++, check());
    client.subscribe(c, (ev) => (seen.events[c].push(ev.seq), check()), { onGap });
  }
  const outcome = async (ms) => {
    let timer;
    await Promise.race([metP, new Promise((r) => (timer = setTimeout(r, ms)))]);
    clearTimeout(timer);
    // Met and still open (final state `closed`): anything that came later counts too.
    return atMet?.state == "closed" ? seen : atMet ?? seen;
  };
  return { expected, seen, client, outcome };
}

for (const file of FILES) {
  const scenario = loadScenario(new URL(file, SCENARIOS));
  test(`${file}: ${scenario.name}`, async () => {
    const hub = await startFakeHub(scenario);
    const run = drive(scenario, hub.url);
    try {
      const r = await hub.result;
      const saw = () => JSON.stringify(run.seen);
      assert.ok(r.ok, `scenario failed at step ${r.step}: ${r.error}\n  the application saw ${saw()}`);
      assert.deepEqual(await run.outcome(3000), run.expected);
    } finally {
      run.client.close();
      await hub.close();
    }
  });
}

/** A bare `ws` client: opened, with the frames it received. */
async function raw(url) {
  const ws = new WebSocket(url);
  ws.frames = [];
  ws.on("message", (d) => ws.frames.push(JSON.parse(d.toString())));
  await once(ws, "open");
  return ws;
}

const resume = loadScenario(new URL("resume_after_restart.json", SCENARIOS));
const stepOf = (scenario, pred) => scenario.steps.findIndex(pred);

test("fails a client that resubscribes without since, at that expect step", async () => {
  const hub = await startFakeHub(resume);
  const ws = await raw(hub.url);
  ws.send(JSON.stringify({ type: "subscribe", channel: "repo:acme/app", id: 1 }));
  await once(ws, "close");
  await sleep(400);
  const ws2 = await raw(hub.url);
  ws2.send(JSON.stringify({ type: "subscribe", channel: "repo:acme/app", id: 2 }));
  const r = await hub.result;
  assert.equal(r.ok, false);
  assert.equal(r.step, stepOf(resume, (s) => s.expect?.since?.seq));
  assert.match(r.error, /^\{"expect":.*: received \{"type":"subscribe","channel":"repo:acme\/app","id":2\}: \$\.since: missing$/);
  ws2.close();
  await hub.close();
});

test("fails a client that reconnects before the retry_after_ms hint", async () => {
  const hub = await startFakeHub(resume);
  const ws = await raw(hub.url);
  ws.send(JSON.stringify({ type: "subscribe", channel: "repo:acme/app", id: 1 }));
  await once(ws, "close");
  const ws2 = await raw(hub.url);
  const r = await hub.result;
  assert.equal(r.ok, false);
  assert.equal(r.step, stepOf(resume, (s) => s.accept?.not_before_ms));
  assert.match(r.error, /the connection arrived \d+ ms after the previous one ended, before 300 ms/);
  ws2.close();
  await hub.close();
});

test("fails a client that reconnects after a terminal 4001", async () => {
  const scenario = loadScenario(new URL("terminal_close_4001.json", SCENARIOS));
  const hub = await startFakeHub(scenario);
  const ws = await raw(hub.url);
  ws.send(JSON.stringify({ type: "auth", token: scenario.client.token, id: 1 }));
  const [code] = await once(ws, "close");
  assert.equal(code, 4001);
  assert.deepEqual(ws.frames.at(-1), { type: "error", message: "unauthenticated: invalid signature", code: "unauthenticated", id: 1 });
  const ws2 = await raw(hub.url);
  const r = await hub.result;
  assert.deepEqual([r.ok, r.step], [false, stepOf(scenario, (s) => s.no_accept)]);
  assert.match(r.error, /a new connection arrived after \d+ ms/);
  ws2.close();
  await hub.close();
});

test("patterns: $any, $absent, captures across frames, $$ literals, substitution in send", async () => {
  const scenario = {
    name: "patterns",
    steps: [
      { accept: {} },
      { expect: { type: "hello", id: "$id", meta: { v: "$any", gone: "$absent" }, tags: ["$$x", "$tag"] } },
      { send: { type: "echo", id: "$id", tag: "$tag", literal: "$$id", list: ["$id", { tag: "$tag" }] } },
      { expect: { type: "again", id: "$id" }, within_ms: 1000 },
      { expect: { type: "again", id: "$id" } },
    ],
  };
  const hub = await startFakeHub(scenario);
  const ws = await raw(hub.url);
  ws.send(JSON.stringify({ type: "hello", id: { n: [1, 2] }, meta: { v: null, extra: 1 }, tags: ["$x", "t1"] }));
  await once(ws, "message");
  assert.deepEqual(ws.frames[0], { type: "echo", id: { n: [1, 2] }, tag: "t1", literal: "$id", list: [{ n: [1, 2] }, { tag: "t1" }] });
  ws.send(JSON.stringify({ type: "again", id: { n: [1, 2] } }));
  ws.send(JSON.stringify({ type: "again", id: { n: [2, 1] } }));
  const r = await hub.result;
  assert.deepEqual(r, { ok: false, step: 4, error: '{"expect":{"type":"again","id":"$id"}}: received {"type":"again","id":{"n":[2,1]}}: $.id: expected {"n":[1,2]} (captured as $id), found {"n":[2,1]}' });
  ws.close();
  await hub.close();
});

test("expect times out, expect_close checks the code, a frame breaks expect_nothing", async () => {
  const hub = await startFakeHub({ name: "t", steps: [{ accept: {} }, { expect: { type: "x" }, within_ms: 100 }] });
  const ws = await raw(hub.url);
  assert.deepEqual(await hub.result, { ok: false, step: 1, error: '{"expect":{"type":"x"},"within_ms":100}: expected a frame within 100 ms, received nothing' });
  ws.close();
  await hub.close();
  const hub2 = await startFakeHub({ name: "t", steps: [{ accept: {} }, { expect_nothing: { ms: 300 } }, { expect_close: { code: 1000 } }] });
  const ws2 = await raw(hub2.url);
  ws2.send("not json");
  assert.deepEqual(await hub2.result, { ok: false, step: 1, error: '{"expect_nothing":{"ms":300}}: received not json' });
  await hub2.close();
  const hub3 = await startFakeHub({ name: "t", steps: [{ accept: {} }, { expect_close: { code: 1000 } }] });
  (await raw(hub3.url)).close(4000, "heartbeat timeout");
  assert.deepEqual(await hub3.result, { ok: false, step: 1, error: '{"expect_close":{"code":1000}}: the client closed with 4000 "heartbeat timeout", expected 1000' });
  await hub3.close();
});

test("malformed scenarios are refused, naming the step", async () => {
  await assert.rejects(startFakeHub({ name: "bad", steps: [{ accept: {} }, { shout: {} }] }), /^Error: step 1 \{"shout":\{\}\}: unknown step kind `shout`$/);
  await assert.rejects(startFakeHub({ name: "bad", steps: [{ close: { code: 1006 } }] }), /step 0 .*close code 1006 cannot be sent/);
  await assert.rejects(startFakeHub({ name: "bad", steps: [{ sleep: { ms: 5 }, within_ms: 3 }] }), /exactly one kind/);
  await assert.rejects(startFakeHub({ name: "bad", steps: [{ no_accept: {} }] }), /`ms` is required/);
});

test("CLI: runs a scenario file once against the SDK, prints the outcome, exits 0", async () => {
  const file = new URL("subscribe_and_receive.json", SCENARIOS).pathname;
  const cli = spawn(process.execPath, [new URL("../fake_hub.mjs", import.meta.url).pathname, file, "--port", "0"]);
  let out = "";
  cli.stdout.on("data", (d) => (out += d));
  while (!/listening on (\S+)/.test(out)) await once(cli.stdout, "data");
  const url = out.match(/listening on (\S+)/)[1];
  assert.match(url, /^ws:\/\/127\.0\.0\.1:\d+\/ws$/);
  const run = drive(loadScenario(file), url);
  const [code] = await once(cli, "exit");
  run.client.close();
  assert.equal(out, `fake hub listening on ${url}\nscenario passed\n`);
  assert.equal(code, 0);
  assert.deepEqual(await run.outcome(0), run.expected);
});

test("the SDK closed while its socket is still connecting does not crash Node (ws emits an error)", async () => {
  // A server that accepts TCP connections and never answers the upgrade.
  const { createServer } = await import("node:net");
  const held = [];
  const server = createServer((s) => held.push(s));
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  const client = new RealtimeClient(`ws://127.0.0.1:${server.address().port}/ws`, { WebSocket });
  await sleep(150);
  client.close();
  await sleep(300);
  assert.equal(client.state, "closed");
  held.forEach((s) => s.destroy());
  server.close();
});
