// The JavaScript half of the wasm driver (imported by `sdk-wasm/src/js.rs`; scripts/build-npm.sh
// folds it into the package's glue). It decides nothing about the protocol: that is the session's,
// in wasm. It holds
//   - the `RealtimeClient` class, the package's API: it loads the wasm by itself (calls made
//     meanwhile wait in a queue), keeps the application's listeners, and turns the wasm's reports
//     (`emit`) into callbacks, states and promises;
//   - the wiring of the socket, the timer, the token provider and the page to the wasm client's
//     one handler `h(tag, a, b)`.
// Their TypeScript types are generated from `sdk-wasm/src/api.rs`; doing this in JS, not through
// a wasm export per method and a wasm→JS call per property, keeps the wasm small.
//
// Tags of `h(tag, a, b)` and kinds of `emit(kind, target, a, b, c, d)`: the same names and values
// as the constants in `sdk-wasm/src/driver.rs` (checked by `sdk-wasm/tests/handler_tags.rs`;
// terser inlines them).
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
const UNSUBSCRIBE = 10; // a: subscription id
const SUBSCRIBE = 11; // a: channel, b: the subscription's record; returns its id
const CONNECT = 12; // connect()
const CLOSE_CLIENT = 13; // close()
const SIGNAL = 14; // a: channel, b: [event, data as JSON]; returns whether it was sent
const REQUEST = 15; // a: [kind (0 presence, 1 history), channel, limit], b: [resolve, reject]
const CREATE = 16; // (the wasm's factory) a: url, b: [options, emit, WebSocket]; returns h
const STATE = 20; // emit: a: state, b: reason, c: code, d: [retryIn, attempt]
const SUB = 21; // emit to a record: a: state, b: recovered, c: code, d: message
const EVENT = 22; // emit to a record: a: the frame
const GAP = 23; // emit to a record: a: lastSeq, b: resumeSeq, c: reason
const FAILURE = 24; // emit: a: code, b: message
const PRESENCE = 25; // emit to a record: a: the members
const MEMBER = 26; // emit to a record: a: user, b: joined, c: the members
const SIGNALLED = 27; // emit to a record: a: the signal frame
const REPLY = 28; // emit to [resolve, reject]: a: the frame, b: code, c: message (failed when set)

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

/** A new empty array. */
export function list() {
  return [];
}

/** `[a, b]`. */
export function pair(a, b) {
  return [a, b];
}

/** `{ user, connections }` onto a member list. */
export function member(l, user, connections) {
  l.push({ user, connections });
}

/** Calls `f` when it is a function (the page listeners' remover). */
export function run(f) {
  if (typeof f == "function") f();
}

/** The text of a thrown value: its `message` when it has one. */
export function text(e) {
  return typeof e?.message == "string" ? e.message : typeof e == "string" ? e : "error";
}

/** Opens a socket with the client's WebSocket constructor and wires it to `h`; throws on a bad URL. */
export function open(h, url, W) {
  const ws = new W(url);
  wire(ws, h);
  return ws;
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

/** Sends `text` when the socket is open. */
export function send(ws, text) {
  if (ws.readyState == 1) ws.send(text);
}

/**
 * Unwires and closes the socket; `code` (1000, 3000–4999: what scripts may send) and `reason`
 * when given.
 */
export function shut(ws, code, reason) {
  wire(ws, null);
  try {
    code ? ws.close(code, reason) : ws.close();
  } catch {}
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

/** A function option `k` of `o` (undefined when absent); throws on anything else. */
function fn(o, k) {
  const f = o?.[k];
  if (f != null && typeof f != "function") throw new TypeError(`${k} must be a function`);
  return f ?? undefined;
}

/**
 * The client options, checked: `[token, backoff.base, backoff.max, heartbeat.interval,
 * heartbeat.timeout, connectTimeout]`, NaN for what is absent.
 */
function options(o) {
  const b = o?.backoff;
  const hb = o?.heartbeat;
  return [fn(o, "token"), ms(b, "base"), ms(b, "max"), ms(hb, "interval"), ms(hb, "timeout"), ms(o, "connectTimeout")];
}

/** The wasm's client factory (`h0(CREATE, url, [options, emit, WebSocket])`), once it is loaded. */
let factory;

/** Called by the wasm when it starts. */
export function register(f) {
  factory = f;
}

let loading;

/** Loads the wasm once (folded into the package's glue, wasm-bindgen's loader is in scope). */
function load() {
  return (loading ??= typeof __wbg_init == "function" ? __wbg_init() : Promise.reject(new Error("not initialised")));
}

/** Adds `f` to `list` until `signal` aborts; returns the function that removes it. */
function listen(list, f, o) {
  if (typeof f != "function") throw new TypeError("listener must be a function");
  const off = () => {
    const i = list.indexOf(f);
    if (i >= 0) list.splice(i, 1);
  };
  list.push(f);
  abortable(o, off);
  return off;
}

/** Calls `off` when `o.signal` aborts (at once if it already has). */
function abortable(o, off) {
  const s = o?.signal;
  if (!s) return;
  if (s.aborted) off();
  else s.addEventListener("abort", off, { once: true });
}

/** Settles the waiters `w` (`[resolve, reject]` pairs): resolved with `v`, or rejected with `e`. */
function settleAll(w, v, e) {
  for (const [ok, no] of w.splice(0)) e ? no(e) : ok(v);
}

/**
 * A connection to a Guts real-time hub (documented in the package's types). It loads the wasm
 * itself; until then its calls wait in a queue.
 */
export class RealtimeClient {
  #h;
  #q = [];
  #state = "idle";
  #reason = "";
  #states = [];
  #errors = [];
  #waiting = [];
  #closed = false;

  constructor(url, o) {
    if (typeof url != "string" || !/^wss?:\/\//.test(url)) throw new TypeError("url must start with ws:// or wss://");
    const opts = options(o);
    const W = o?.WebSocket ?? globalThis.WebSocket;
    if (o?.WebSocket != null && typeof o.WebSocket != "function") throw new TypeError("option WebSocket must be a constructor");
    const start = () => {
      if (this.#closed) return;
      if (typeof W != "function") {
        return this.#end("no WebSocket in this runtime: pass one as the `WebSocket` option (in Node 20: `new RealtimeClient(url, { WebSocket })` with the `ws` package)");
      }
      this.#h = factory(CREATE, url, [opts, (...a) => this.#emit(...a), W]);
      for (const f of this.#q.splice(0)) f();
    };
    if (factory) start();
    else load().then(start, (e) => this.#end(`the wasm could not be loaded (${text(e)}); see "Troubleshooting" in the package's README`));
  }

  /** Runs `f` now, or once the wasm is loaded. */
  #run(f) {
    if (this.#h) return f(this.#h);
    this.#q.push(() => f(this.#h));
  }

  /** Closed for good without the wasm: the state, the waiters and every subscription. */
  #end(reason) {
    this.#emit(STATE, undefined, "closed", reason);
    this.#closed = true;
  }

  /** A report of the wasm client. */
  #emit(kind, r, a, b, c, d) {
    switch (kind) {
      case STATE: {
        this.#state = a;
        this.#reason = b;
        const s = put(put({ state: a, reason: b }, "code", c), "retryIn", d?.[0]);
        put(s, "attempt", d?.[1]);
        for (const f of this.#states.slice()) call(f, s);
        if (a == "connected") settleAll(this.#waiting);
        if (a == "closed") settleAll(this.#waiting, 0, Object.assign(new Error(b), { code: c }));
        return;
      }
      case FAILURE: {
        const e = put({}, "code", a);
        e.message = b;
        for (const f of this.#errors.slice()) call(f, e);
        return;
      }
      case REPLY:
        return c === undefined ? r[0](a) : r[1](put(new Error(c), "code", b));
    }
    const h = r.s;
    switch (kind) {
      case SUB:
        r.st = a;
        if (a == "subscribed") settleAll(r.w);
        else if (a != "subscribing") settleAll(r.w, 0, new Error(d ?? a));
        if (h.s) call(h.s, put(put(put({ channel: r.c, state: a }, "recovered", b), "code", c), "message", d));
        return;
      case EVENT:
        return call(h.e, a);
      case GAP: {
        const g = put(put({ channel: r.c }, "lastSeq", a), "resumeSeq", b);
        g.reason = c;
        if (h.g) call(h.g, g);
        return;
      }
      case PRESENCE:
        r.m = a;
        if (h.m) call(h.m, { channel: r.c, members: a });
        return;
      case MEMBER: {
        r.m = c;
        const f = b ? h.j : h.l;
        if (f) call(f, { channel: r.c, user: a });
        return;
      }
      case SIGNALLED:
        if (h.x) call(h.x, a);
    }
  }

  subscribe(channel, e, o) {
    if (typeof e != "function") throw new TypeError("callback must be a function");
    const h = { e, s: fn(o, "onState"), g: fn(o, "onGap"), m: fn(o, "onPresence"), j: fn(o, "onJoin"), l: fn(o, "onLeave"), x: fn(o, "onSignal") };
    if (this.#closed) throw new Error("client closed");
    const presence = !!(o?.presence || h.m || h.j || h.l);
    const r = { c: channel, s: h, st: "subscribing", m: [], w: [], id: 0 };
    const go = (hh) => {
      if (r.st != "unsubscribed") r.id = hh(SUBSCRIBE, channel, [r, presence]);
    };
    if (this.#h) go(this.#h);
    else {
      this.#q.push(() => {
        try {
          go(this.#h);
        } catch (err) {
          this.#emit(SUB, r, "failed", undefined, undefined, text(err));
        }
      });
    }
    const handle = {
      channel,
      get state() {
        return r.st;
      },
      get members() {
        return r.m;
      },
      unsubscribe: () => {
        if (r.st == "unsubscribed") return;
        if (r.id && this.#h) this.#h(UNSUBSCRIBE, r.id);
        r.st = "unsubscribed";
        settleAll(r.w, 0, new Error("unsubscribed"));
      },
      ready: () => new Promise((ok, no) => (r.st == "subscribed" ? ok() : r.st == "subscribing" ? r.w.push([ok, no]) : no(new Error(r.st)))),
    };
    abortable(o, handle.unsubscribe);
    return handle;
  }

  onState(f, o) {
    return listen(this.#states, f, o);
  }

  onError(f, o) {
    return listen(this.#errors, f, o);
  }

  ready() {
    return new Promise((ok, no) => {
      if (this.#state == "connected") ok();
      else if (this.#state == "closed") no(new Error(this.#reason));
      else this.#waiting.push([ok, no]);
    });
  }

  get state() {
    return this.#state;
  }

  connect() {
    this.#run((h) => h(CONNECT));
  }

  close() {
    if (this.#closed) return;
    this.#closed = true;
    // (From inside a callback the final report comes when the callback returns.)
    this.#state = "closed";
    if (this.#h) this.#h(CLOSE_CLIENT);
    else this.#emit(STATE, undefined, "closed", "closed by the application");
    this.#q.length = 0;
  }

  signal(channel, event, data) {
    return !!this.#h?.(SIGNAL, channel, [event, JSON.stringify(data ?? null)]);
  }

  presence(channel) {
    return this.#request(0, channel);
  }

  history(channel, limit) {
    return this.#request(1, channel, limit);
  }

  /** A request's promise: the wasm keeps `[resolve, reject]` until the answer (a throw rejects). */
  #request(kind, channel, limit) {
    return new Promise((ok, no) => {
      if (this.#closed) throw new Error("client closed");
      this.#run((h) => {
        try {
          h(REQUEST, [kind, channel, limit], [ok, no]);
        } catch (e) {
          no(e);
        }
      });
    });
  }
}

/** `new RealtimeClient(url, options)`, for the `createClient` export. */
export function construct(url, o) {
  return new RealtimeClient(url, o);
}

/** One report of the wasm client, to the `RealtimeClient` that made it. */
export function emit(f, kind, r, a, b, c, d) {
  f(kind, r, a, b, c, d);
}
