#!/usr/bin/env node
// A scripted fake hub for SDK implementers: a WebSocket server that plays a JSON scenario against
// the client that connects, checks every frame the client sends, and says whether the client
// behaved (docs/CONFORMANCE.md has the full format; the Rust twin runs the same files).
//
// A scenario: `{"name", "description"?, "client"?, "client_expects"?, "steps": [...]}`. `client`
// and `client_expects` are for the SDK's harness, not for the hub. Steps run in order, each an
// object with one key; waits default to 5000 ms; the first failure ends the scenario.
//   {"accept": {"within_ms"?, "not_before_ms"?}}  the client's next connection (on any path)
//       becomes the current one (a current one still open is dropped). It must not have arrived
//       sooner than not_before_ms after the previous connection ended: at the hub's close/drop
//       step, when the hub saw the client's close, or at this step if it was still open (first
//       accept: when the hub started).
//   {"no_accept": {"ms"}}              no new connection arrives within ms
//   {"send": JSON}                     JSON.stringify'd after replacing "$name" with its capture
//   {"send_raw": "text"}               sent verbatim
//   {"expect": PATTERN, "within_ms"?}  the next text frame matches (pings/pongs are not frames)
//   {"expect_nothing": {"ms"}}         no text frame for ms (a close is not a frame)
//   {"expect_close": {"code"?, "within_ms"?}}  the client's close comes next, with `code` if given
//       (1005: a close frame without code, 1006: no close frame)
//   {"close": {"code", "reason"?}}     the hub closes (a no-op once the client closed)
//   {"drop": {}}                       the hub drops the TCP connection, without a close frame
//   {"sleep": {"ms"}}
// PATTERN: an object matches when each of its keys matches (extra keys are fine), an array element
// by element with the same length, a scalar by equality. Strings: "$any" (the key is present),
// "$absent" (it is not), "$name" with name in [a-z0-9_]+ (the key is present; captures its value,
// or must equal the value captured before: captures hold for the whole scenario), "$$x" (the
// string "$x"); any other string is itself.
import { readFileSync, realpathSync } from "node:fs";
import { pathToFileURL } from "node:url";
import { isDeepStrictEqual } from "node:util";
import { WebSocketServer, WebSocket } from "ws";

const ARGS = {
  accept: ["within_ms", "not_before_ms"], no_accept: ["ms"], expect_nothing: ["ms"],
  expect_close: ["code", "within_ms"], close: ["code", "reason"], drop: [], sleep: ["ms"],
};
const REQUIRED = { no_accept: ["ms"], expect_nothing: ["ms"], sleep: ["ms"], close: ["code"] };
const CAPTURE = /^\$[a-z0-9_]+$/;
const now = () => performance.now();
const show = (v) => (v === undefined ? "nothing" : JSON.stringify(v));
const round = (t) => Math.round(t);
const parse = (text) => {
  try {
    return JSON.parse(text);
  } catch {}
};

/** Reads and checks a scenario file. */
export function loadScenario(path) {
  const scenario = JSON.parse(readFileSync(path, "utf8"));
  check(scenario);
  return scenario;
}

/** Throws on a malformed scenario, naming the step. */
function check(s) {
  if (!s || typeof s != "object" || typeof s.name != "string") throw new Error("a scenario is an object with a string `name`");
  if (!Array.isArray(s.steps) || s.steps.length == 0) throw new Error("a scenario needs a non-empty `steps` array");
  s.steps.forEach((step, i) => {
    const bad = (why) => new Error(`step ${i} ${JSON.stringify(step)}: ${why}`);
    const keys = Object.keys(step ?? {}).filter((k) => !(k == "within_ms" && "expect" in step));
    if (keys.length != 1) throw bad("a step has exactly one kind (and `within_ms` beside `expect`)");
    const [kind] = keys;
    const arg = step[kind];
    const isMs = (v) => Number.isSafeInteger(v) && v >= 0;
    if (kind == "send" || kind == "expect") {
      if (kind == "expect" && step.within_ms !== undefined && !isMs(step.within_ms)) throw bad("within_ms must be an integer >= 0");
    } else if (kind == "send_raw") {
      if (typeof arg != "string") throw bad("send_raw takes a string");
    } else if (!ARGS[kind]) {
      throw bad(`unknown step kind \`${kind}\``);
    } else {
      if (!arg || typeof arg != "object" || Array.isArray(arg)) throw bad(`${kind} takes an object`);
      for (const k of Object.keys(arg)) if (!ARGS[kind].includes(k)) throw bad(`unknown key \`${k}\``);
      for (const k of REQUIRED[kind] ?? []) if (arg[k] === undefined) throw bad(`\`${k}\` is required`);
      for (const k of ["ms", "within_ms", "not_before_ms"]) if (arg[k] !== undefined && !isMs(arg[k])) throw bad(`${k} must be an integer >= 0`);
      const c = arg.code;
      if (c !== undefined && !Number.isInteger(c)) throw bad("code must be an integer");
      const sendable = (c >= 1000 && c <= 1014 && ![1004, 1005, 1006].includes(c)) || (c >= 3000 && c <= 4999);
      if (kind == "close" && !sendable) throw bad(`close code ${c} cannot be sent (use drop for 1006)`);
      if (arg.reason !== undefined && (typeof arg.reason != "string" || Buffer.byteLength(arg.reason) > 123)) throw bad("reason must be a string of at most 123 bytes");
    }
  });
}

/** Matches `actual` against pattern `p`; binds captures into `caps`. Returns why not, or null. */
function match(p, actual, path, caps) {
  if (typeof p == "string" && p.startsWith("$")) {
    if (p.startsWith("$$")) p = p.slice(1);
    else if (p == "$any") return null;
    else if (p == "$absent") return `${path}: expected no value, found ${show(actual)}`;
    else if (CAPTURE.test(p)) {
      const name = p.slice(1);
      if (!(name in caps)) caps[name] = actual;
      return isDeepStrictEqual(caps[name], actual) ? null : `${path}: expected ${show(caps[name])} (captured as ${p}), found ${show(actual)}`;
    }
  }
  if (Array.isArray(p)) {
    if (!Array.isArray(actual) || actual.length != p.length) return `${path}: expected an array of ${p.length}, found ${show(actual)}`;
    for (let i = 0, why; i < p.length; i++) if ((why = match(p[i], actual[i], `${path}[${i}]`, caps))) return why;
    return null;
  }
  if (p && typeof p == "object") {
    if (!actual || typeof actual != "object" || Array.isArray(actual)) return `${path}: expected an object, found ${show(actual)}`;
    for (const [k, v] of Object.entries(p)) {
      const has = Object.hasOwn(actual, k);
      if (v === "$absent" && has) return `${path}.${k}: expected absent, found ${show(actual[k])}`;
      if (v !== "$absent" && !has) return `${path}.${k}: missing`;
      const why = has && match(v, actual[k], `${path}.${k}`, caps);
      if (why) return why;
    }
    return null;
  }
  return p === actual ? null : `${path}: expected ${show(p)}, found ${show(actual)}`;
}

/** `v` with every "$name" string replaced by its capture (object keys are left alone). */
function fill(v, caps) {
  if (typeof v == "string" && v.startsWith("$")) {
    if (v.startsWith("$$")) return v.slice(1);
    if (v == "$any" || v == "$absent") throw new Error(`${v} cannot be sent`);
    if (!CAPTURE.test(v)) return v;
    if (!(v.slice(1) in caps)) throw new Error(`${v} was not captured`);
    return caps[v.slice(1)];
  }
  if (Array.isArray(v)) return v.map((x) => fill(x, caps));
  if (v && typeof v == "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, fill(x, caps)]));
  return v;
}

/**
 * Starts the hub and runs `scenario` against whoever connects. `result` resolves (never rejects)
 * to `{ ok: true }` or `{ ok: false, step, error }`; `close()` stops the hub.
 */
export async function startFakeHub(scenario, { port = 0, host = "127.0.0.1" } = {}) {
  check(scenario);
  const wss = new WebSocketServer({ port, host });
  await new Promise((ok, no) => wss.once("listening", ok).once("error", no));
  const startedAt = now();
  const pending = []; // connections no `accept` took yet
  const all = new Set();
  const listeners = new Set();
  const changed = () => listeners.forEach((f) => f());
  let stopped = false;

  wss.on("connection", (ws) => {
    const c = { ws, at: now(), inbox: [], closed: null, endedAt: null };
    ws.on("error", () => {});
    ws.on("message", (data, binary) => {
      c.inbox.push(binary ? { binary: data.length } : { text: data.toString() });
      changed();
    });
    ws.on("close", (code, reason) => {
      c.closed = { code, reason: reason.toString() };
      c.endedAt ??= now();
      changed();
    });
    all.add(c);
    pending.push(c);
    changed();
  });

  /** The first non-undefined value of `f()` within `ms`, or undefined (also once stopped). */
  const waitFor = (f, ms) =>
    new Promise((resolve) => {
      const done = (v) => (clearTimeout(timer), listeners.delete(poll), resolve(v));
      const poll = () => {
        const v = stopped ? undefined : f();
        if (stopped || v !== undefined) done(v);
      };
      const timer = setTimeout(() => done(undefined), ms);
      listeners.add(poll);
      poll();
    });

  const caps = Object.create(null);
  let cur = null;
  const closedText = (c) => (c.closed ? `${c.closed.code} ${JSON.stringify(c.closed.reason)}` : "by the hub");
  const frameText = (f) => (f.binary !== undefined ? `a binary frame of ${f.binary} bytes` : f.text);
  const nextFrame = (ms) => waitFor(() => cur.inbox[0] ?? (cur.closed ? null : undefined), ms).then((f) => (f && cur.inbox.shift(), f));

  /** Runs one step; returns why it failed, or nothing. */
  async function step(s) {
    const [kind] = Object.keys(s).filter((k) => k != "within_ms" || !("expect" in s));
    const a = s[kind];
    if (kind == "accept") {
      if (cur && !cur.endedAt) cur.ws.terminate(); // the old one is dropped
      if (cur) cur.endedAt ??= now();
      const ref = cur ? cur.endedAt : startedAt;
      const within = a.within_ms ?? 5000;
      const c = await waitFor(() => pending[0], within);
      if (!c) return `no connection within ${within} ms`;
      pending.shift();
      cur = c;
      if (c.at - ref < (a.not_before_ms ?? 0)) return `the connection arrived ${round(c.at - ref)} ms after the previous one ended, before ${a.not_before_ms} ms`;
      return;
    }
    if (kind == "no_accept") {
      const start = now();
      const c = await waitFor(() => pending[0], a.ms);
      return c && `a new connection arrived after ${round(Math.max(c.at - start, 0))} ms`;
    }
    if (kind == "sleep") return void (await waitFor(() => undefined, a.ms));
    if (!cur) return "no connection: an `accept` step must come first";
    const ws = cur.ws;
    const open = ws.readyState == WebSocket.OPEN;
    if (kind == "send" || kind == "send_raw") {
      if (!open) return `cannot send: the connection is closed (${closedText(cur)})`;
      try {
        return void ws.send(kind == "send" ? JSON.stringify(fill(a, caps)) : a);
      } catch (e) {
        return e.message; // an unbound capture
      }
    }
    if (kind == "close" || kind == "drop") {
      if (open) kind == "close" ? ws.close(a.code, a.reason ?? "") : ws.terminate();
      cur.endedAt ??= now();
      return;
    }
    if (kind == "expect") {
      const within = s.within_ms ?? 5000;
      const f = await nextFrame(within);
      if (f === undefined) return `expected a frame within ${within} ms, received nothing`;
      if (f === null) return `expected a frame, the connection closed (${closedText(cur)})`;
      if (f.binary !== undefined) return `received ${frameText(f)}`;
      const value = parse(f.text);
      if (value === undefined) return `received ${f.text} (not JSON)`;
      const tentative = Object.assign(Object.create(null), caps);
      const why = match(a, value, "$", tentative);
      if (why) return `received ${f.text}: ${why}`;
      return void Object.assign(caps, tentative);
    }
    if (kind == "expect_nothing") {
      const f = await waitFor(() => cur.inbox[0], a.ms);
      return f && `received ${frameText(f)}`;
    }
    if (kind == "expect_close") {
      const within = a.within_ms ?? 5000;
      const f = await nextFrame(within);
      if (f === undefined) return `the client did not close within ${within} ms`;
      if (f) return `expected a close, received ${frameText(f)}`;
      if (a.code !== undefined && cur.closed.code != a.code) return `the client closed with ${closedText(cur)}, expected ${a.code}`;
    }
  }

  async function run() {
    for (let i = 0; i < scenario.steps.length; i++) {
      const s = scenario.steps[i];
      const why = await step(s);
      if (stopped) return { ok: false, step: i, error: `${JSON.stringify(s)}: the hub was closed` };
      if (why) return { ok: false, step: i, error: `${JSON.stringify(s)}: ${why}` };
    }
    return { ok: true };
  }

  const result = run().catch((e) => ({ ok: false, step: -1, error: `fake hub error: ${e.stack ?? e}` }));
  const { port: bound } = wss.address();
  return {
    url: `ws://${host.includes(":") ? `[${host}]` : host}:${bound}/ws`,
    port: bound,
    result,
    /** The current connection has ended (or there is none) within `ms`: for a clean exit. */
    settled: (ms) => waitFor(() => (!cur || cur.endedAt ? true : undefined), ms),
    close() {
      stopped = true;
      changed();
      for (const c of all) c.ws.terminate();
      return new Promise((ok) => wss.close(() => ok()));
    },
  };
}

// CLI: node fake_hub.mjs SCENARIO.json [--port N] [--host H]
if (process.argv[1] && import.meta.url == pathToFileURL(realpathSync(process.argv[1])).href) {
  const argv = process.argv.slice(2);
  const opt = (name) => (argv.includes(name) ? argv[argv.indexOf(name) + 1] : undefined);
  const file = argv.find((a, i) => !a.startsWith("--") && !["--port", "--host"].includes(argv[i - 1]));
  if (!file) {
    console.error("usage: node fake_hub.mjs SCENARIO.json [--port N] [--host H]");
    process.exit(2);
  }
  const options = { port: Number(opt("--port") ?? 0), host: opt("--host") ?? "127.0.0.1" };
  const hub = await Promise.resolve(file).then(loadScenario).then((s) => startFakeHub(s, options)).catch((e) => {
    console.error(`fake hub: ${e.message}`);
    process.exit(2);
  });
  console.log(`fake hub listening on ${hub.url}`);
  const r = await hub.result;
  console.log(r.ok ? "scenario passed" : `scenario failed at step ${r.step}: ${r.error}`);
  await hub.settled(1000); // let the client close by itself before the hub goes away
  await hub.close();
  process.exit(r.ok ? 0 : 1);
}
