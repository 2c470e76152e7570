// The JavaScript half of the wasm driver (imported by `sdk-wasm/src/js.rs`; scripts/build-npm.sh
// folds it into the package's glue). It owns no state and decides nothing: the `RealtimeClient`
// class and subscription handles are calls of a client's one handler `h(tag, a, b)` (the
// driver, in wasm), which is also what browser events are wired to; it reads options and thrown
// values, and builds the plain objects handed to application callbacks (their TypeScript types
// are generated from `sdk-wasm/src/api.rs`). Doing this in JS, not through a wasm export per
// method and a wasm→JS call per property, keeps the wasm small.
//
// Tags of `h(tag, a, b)` (the same constants are in `sdk-wasm/src/driver.rs`):
//   0 socket open · 1 message (a: the parsed frame, undefined if not JSON) · 2 close (a: code,
//   b: reason) · 3 socket error · 4 timer · 5 page event (a: 1 online, 2 offline, 3 resumed,
//   4 hidden) · 6 token (a: generation, b: token or undefined) · 7 token failed (a: generation,
//   b: message) · 8 token refused for good · 9 start · 10 unsubscribe (a: handle id) ·
//   11 a handle's state (a: handle id; returns the state name) · 12 subscribe (a: channel, b: the
//   checked callbacks; returns the handle id) · 13 onState (a: listener) · 14 onError (a:
//   listener) · 15 the client's state (returns its name) · 16 connect() · 17 close().

/** Calls an application callback; what it throws is logged, never propagated into the driver. */
function call(f, v) {
  try {
    f(v);
  } catch (e) {
    console.error("guts-realtime: a callback threw", e);
  }
}

/** `o[k] = v` unless `v` is undefined (optional fields are absent, not `undefined`). */
function put(o, k, v) {
  if (v !== undefined) o[k] = v;
  return o;
}

/** A new list of listeners. */
export function list() {
  return [];
}

/** Adds a listener to a list. */
export function add(l, f) {
  l.push(f);
}

/** Calls `f` when it is a function (the page listeners' remover). */
export function run(f) {
  if (typeof f == "function") f();
}

/** The text of a thrown value: its `message` when it has one. */
export function text(e) {
  return typeof e?.message == "string" ? e.message : typeof e == "string" ? e : "error";
}

/** Sets (or, with `h` null, clears) the socket's four handlers. */
export function wire(ws, h) {
  ws.onopen = h && (() => h(0));
  ws.onmessage = h && ((e) => {
    let frame;
    try {
      frame = JSON.parse(e.data);
    } catch {}
    h(1, frame);
  });
  ws.onclose = h && ((e) => h(2, e.code, e.reason));
  ws.onerror = h && (() => h(3));
}

/** `setTimeout` for the driver's one timer. */
export function timer(h, ms) {
  return setTimeout(() => h(4), ms);
}

/** The start tick, on the next microtask. */
export function soon(h) {
  queueMicrotask(() => h(9));
}

const PAGE = { online: 1, offline: 2, pageshow: 3, pagehide: 4 };

/** Listens to the page lifecycle where there is a page; returns the function that stops it. */
export function page(h) {
  const g = globalThis;
  const d = g.document;
  if (typeof g.addEventListener != "function") return;
  const f = (e) => {
    const k = PAGE[e.type] ?? (d?.visibilityState == "visible" ? 3 : 0);
    if (k) h(5, k);
  };
  for (const t in PAGE) g.addEventListener(t, f);
  d?.addEventListener("visibilitychange", f);
  return () => {
    for (const t in PAGE) g.removeEventListener(t, f);
    d?.removeEventListener("visibilitychange", f);
  };
}

/** Asks the token provider; the answer comes back as tag 6, 7 or 8 with generation `g`. */
export function token(p, h, g) {
  new Promise((ok) => ok(p())).then(
    (v) =>
      typeof v == "string" || v == null
        ? h(6, g, v || undefined)
        : h(7, g, "token provider returned a non-string"),
    (e) => h(e?.unauthorized || e?.name == "UnauthorizedError" ? 8 : 7, g, text(e)),
  );
}

/** Milliseconds option `k` of `o` (NaN when absent); throws on anything but a number >= 0. */
function ms(o, k) {
  const v = o?.[k];
  if (v == null) return NaN;
  if (typeof v != "number" || !(v >= 0) || v == Infinity) {
    throw new TypeError(`option ${k} must be a number of milliseconds >= 0`);
  }
  return v;
}

/**
 * Reads `new RealtimeClient(url, options)`'s options: `[token, backoff.base, backoff.max,
 * heartbeat.interval, heartbeat.timeout, connectTimeout]`, NaN for what is absent.
 */
export function options(o) {
  const t = o?.token ?? undefined;
  if (t !== undefined && typeof t != "function") throw new TypeError("option token must be a function");
  const b = o?.backoff;
  const hb = o?.heartbeat;
  return [t, ms(b, "base"), ms(b, "max"), ms(hb, "interval"), ms(hb, "timeout"), ms(o, "connectTimeout")];
}

/** One subscription's callbacks, checked: `{ e: callback, s: onState, g: onGap }`. */
export function handlers(e, o) {
  const fn = (f, k) => {
    if (f != null && typeof f != "function") throw new TypeError(`${k} must be a function`);
    return f ?? undefined;
  };
  if (typeof e != "function") throw new TypeError("callback must be a function");
  return { e, s: fn(o?.onState, "onState"), g: fn(o?.onGap, "onGap") };
}

/** Where a client object keeps its handler. */
const H = Symbol("guts-realtime");

/**
 * A connection to a Guts real-time hub (documented in the package's types). Its methods are
 * calls of the client's handler; `createClient` is the wasm export, in scope once
 * scripts/build-npm.sh has folded this file into the glue.
 */
export class RealtimeClient {
  constructor(url, options) {
    return createClient(url, options);
  }
  subscribe(channel, callback, opts) {
    const h = this[H];
    const checked = handlers(callback, opts);
    return handle(h, h(12, channel, checked), channel);
  }
  onState(f) {
    this[H](13, f);
  }
  onError(f) {
    this[H](14, f);
  }
  get state() {
    return this[H](15);
  }
  connect() {
    this[H](16);
  }
  close() {
    this[H](17);
  }
}

/** The `RealtimeClient` over the handler `h` (what `createClient` returns). */
export function client(h) {
  const c = Object.create(RealtimeClient.prototype);
  c[H] = h;
  return c;
}

/** What `subscribe` returns: the subscription's channel, state and `unsubscribe()`. */
export function handle(h, id, channel) {
  return {
    channel,
    get state() {
      return h(11, id);
    },
    unsubscribe() {
      h(10, id);
    },
  };
}

/** An event or notification frame to its subscription's callback. */
export function event(h, frame) {
  call(h.e, frame);
}

/** `StateChange` to every connection-state listener (a copy: listeners added meanwhile wait). */
export function state(fs, state, reason, code, retryIn, attempt) {
  const o = put(put(put({ state, reason }, "code", code), "retryIn", retryIn), "attempt", attempt);
  for (const f of fs.slice()) call(f, o);
}

/** `SubscriptionState` to a subscription's `onState`. */
export function sub(h, channel, state, recovered, code, message) {
  if (h.s) call(h.s, put(put(put({ channel, state }, "recovered", recovered), "code", code), "message", message));
}

/** `Gap` to a subscription's `onGap`. */
export function gap(h, channel, lastSeq, resumeSeq, reason) {
  if (!h.g) return;
  const o = put(put({ channel }, "lastSeq", lastSeq), "resumeSeq", resumeSeq);
  o.reason = reason;
  call(h.g, o);
}

/** `ErrorInfo` to every error listener. */
export function error(fs, code, message) {
  const o = put({}, "code", code);
  o.message = message;
  for (const f of fs.slice()) call(f, o);
}
