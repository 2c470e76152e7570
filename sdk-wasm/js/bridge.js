// The JavaScript half of the wasm driver (imported by `sdk-wasm/src/js.rs`; scripts/build-npm.sh
// folds it into the package's glue). It owns no state and decides nothing: the `RealtimeClient`
// class and subscription handles are calls of a client's one handler `h(tag, a, b)` (the
// driver, in wasm), which is also what browser events are wired to; it reads options and thrown
// values, and builds the plain objects handed to application callbacks (their TypeScript types
// are generated from `sdk-wasm/src/api.rs`). Doing this in JS, not through a wasm export per
// method and a wasm→JS call per property, keeps the wasm small.
//
// Tags of `h(tag, a, b)`: the same names and values as the constants in
// `sdk-wasm/src/driver.rs` (checked by `sdk-wasm/tests/handler_tags.rs`; terser inlines them).
const OPEN = 0; // socket open
const MESSAGE = 1; // a: the parsed frame, undefined if not JSON
const CLOSE = 2; // a: code, b: reason
const ERROR = 3; // socket error
const TIMER = 4; // the timer fired
const PAGE = 5; // a: 1 online, 2 offline, 3 resumed, 4 hidden
const TOKEN = 6; // a: generation, b: token or undefined
const TOKEN_FAILED = 7; // a: generation, b: message
const TOKEN_REFUSED = 8; // a: generation, b: message (refused for good)
const START = 9; // the first connect
const UNSUBSCRIBE = 10; // a: handle id
const SUB_STATE = 11; // a: handle id; returns the state name
const SUBSCRIBE = 12; // a: channel, b: the checked callbacks; returns the handle id
const ON_STATE = 13; // a: listener
const ON_ERROR = 14; // a: listener
const STATE = 15; // returns the client's state name
const CONNECT = 16; // connect()
const CLOSE_CLIENT = 17; // close()
const SIGNAL = 18; // a: channel, b: [event, data as JSON]; returns whether it was sent
const REQUEST = 19; // a: [kind (0 presence, 1 history), channel, limit], b: [resolve, reject]
const MEMBERS = 20; // a: handle id; returns the members of its channel

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
  ws.onopen = h && (() => h(OPEN));
  ws.onmessage = h && ((e) => {
    let frame;
    try {
      frame = JSON.parse(e.data);
    } catch {}
    h(MESSAGE, frame);
  });
  ws.onclose = h && ((e) => h(CLOSE, e.code, e.reason));
  ws.onerror = h && (() => h(ERROR));
}

/** `setTimeout` for the driver's one timer. */
export function timer(h, ms) {
  return setTimeout(() => h(TIMER), ms);
}

/** The start tick, on the next microtask. */
export function soon(h) {
  queueMicrotask(() => h(START));
}

const PAGE_EVENTS = { online: 1, offline: 2, pageshow: 3, pagehide: 4 };

/** Listens to the page lifecycle where there is a page; returns the function that stops it. */
export function page(h) {
  const g = globalThis;
  const d = g.document;
  if (typeof g.addEventListener != "function") return;
  const f = (e) => {
    const k = PAGE_EVENTS[e.type] ?? (d?.visibilityState == "visible" ? 3 : 0);
    if (k) h(PAGE, k);
  };
  for (const t in PAGE_EVENTS) g.addEventListener(t, f);
  d?.addEventListener("visibilitychange", f);
  return () => {
    for (const t in PAGE_EVENTS) g.removeEventListener(t, f);
    d?.removeEventListener("visibilitychange", f);
  };
}

/** Asks the token provider; the answer comes back as TOKEN, TOKEN_FAILED or TOKEN_REFUSED with generation `g`. */
export function token(p, h, g) {
  new Promise((ok) => ok(p())).then(
    (v) =>
      typeof v == "string" || v == null
        ? h(TOKEN, g, v || undefined)
        : h(TOKEN_FAILED, g, "token provider returned a non-string"),
    (e) => h(e?.unauthorized || e?.name == "UnauthorizedError" ? TOKEN_REFUSED : TOKEN_FAILED, g, text(e)),
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

/**
 * One subscription's callbacks, checked: `{ e: callback, s: onState, g: onGap, m: onPresence,
 * j: onJoin, l: onLeave, x: onSignal, p: presence }` (presence is joined with `presence: true`
 * or any presence callback).
 */
export function handlers(e, o) {
  const fn = (k) => {
    const f = o?.[k];
    if (f != null && typeof f != "function") throw new TypeError(`${k} must be a function`);
    return f ?? undefined;
  };
  if (typeof e != "function") throw new TypeError("callback must be a function");
  const m = fn("onPresence");
  const j = fn("onJoin");
  const l = fn("onLeave");
  const p = !!(o?.presence || m || j || l);
  return { e, s: fn("onState"), g: fn("onGap"), m, j, l, x: fn("onSignal"), p };
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
    checked.c = channel;
    return handle(h, h(SUBSCRIBE, channel, checked), channel);
  }
  onState(f) {
    this[H](ON_STATE, f);
  }
  onError(f) {
    this[H](ON_ERROR, f);
  }
  get state() {
    return this[H](STATE);
  }
  connect() {
    this[H](CONNECT);
  }
  close() {
    this[H](CLOSE_CLIENT);
  }
  signal(channel, event, data) {
    return this[H](SIGNAL, channel, [event, JSON.stringify(data ?? null)]);
  }
  presence(channel) {
    return request(this[H], 0, channel);
  }
  history(channel, limit) {
    return request(this[H], 1, channel, limit);
  }
}

/** A request's promise: the driver keeps `[resolve, reject]` until the answer (a throw rejects). */
function request(h, kind, channel, limit) {
  return new Promise((ok, no) => h(REQUEST, [kind, channel, limit], [ok, no]));
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
      return h(SUB_STATE, id);
    },
    get members() {
      return h(MEMBERS, id);
    },
    unsubscribe() {
      h(UNSUBSCRIBE, id);
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

/** `{ user, connections }` onto a member list. */
export function member(l, user, connections) {
  l.push({ user, connections });
}

/** The member list to a subscription's `onPresence`. */
export function presence(h, members) {
  if (h.m) call(h.m, { channel: h.c, members });
}

/** A join (`joined`) or leave to the subscription's `onJoin` / `onLeave`. */
export function join(h, user, joined) {
  const f = joined ? h.j : h.l;
  if (f) call(f, { channel: h.c, user });
}

/** A signal frame to the subscription's `onSignal`. */
export function signal(h, frame) {
  if (h.x) call(h.x, frame);
}

/** Settles a request's promise (`pr`: `[resolve, reject]`): with the frame, or an Error. */
export function settle(pr, frame, code, message) {
  if (message === undefined) return pr[0](frame);
  const e = new Error(message);
  if (code) e.code = code;
  pr[1](e);
}
