// The package's API: the `RealtimeClient` class (declared in npm/src/index.d.ts). It loads the
// wasm by itself (calls made meanwhile wait in a queue), checks the options, keeps the
// application's listeners and turns the driver's reports into callbacks, states and promises.
// It decides nothing about the protocol: that is the session's, behind the driver (driver.js).
import init, { strings, text, wasm } from "./wasm.js";
import { Driver, message } from "./driver.js";
import { CONNECT, HISTORY, PRESENCE_OF, SIGNAL, SUBSCRIBE, UNSUBSCRIBE } from "./abi.js";

/** Calls an application callback; what it throws is logged, never propagated into the driver. */
function call(f, v) {
  try {
    f?.(v);
  } catch (e) {
    console.error("guts-realtime: a callback threw", e);
  }
}

/** `o[k] = v` unless `v` is null or undefined (optional fields are absent). */
function put(o, k, v) {
  if (v != null) o[k] = v;
  return o;
}

/** Milliseconds option `k` of `o` (NaN when absent); throws on anything but a number >= 0. */
function ms(o, k) {
  const v = o?.[k];
  if (v == null) return NaN;
  if (typeof v != "number" || !(v >= 0) || v == Infinity) throw new TypeError(`option ${k} must be a number of milliseconds >= 0`);
  return v;
}

/** A function option `k` of `o` (undefined when absent); throws on anything else. */
function fn(o, k) {
  const f = o?.[k];
  if (f != null && typeof f != "function") throw new TypeError(`${k} must be a function`);
  return f ?? undefined;
}

/** `[{ user, connections }]` from the session's `[[user, connections]]`. */
const members = (l) => l.map(([user, connections]) => ({ user, connections }));

/** Adds `f` to `list` until `o.signal` aborts; returns the function that removes it. */
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
  if (s?.aborted) off();
  else s?.addEventListener("abort", off, { once: true });
}

/** Settles the waiters `w` (`[resolve, reject]` pairs): resolved, or rejected with `e`. */
function settle(w, e) {
  for (const [ok, no] of w.splice(0)) e ? no(e) : ok();
}

export class RealtimeClient {
  #d;
  #q = [];
  #state = "idle";
  #reason = "";
  #states = [];
  #errors = [];
  #waiting = [];
  #closed = false;

  constructor(url, o) {
    if (typeof url != "string" || !/^wss?:\/\//.test(url)) throw new TypeError("url must start with ws:// or wss://");
    const b = o?.backoff;
    const hb = o?.heartbeat;
    const opts = [fn(o, "token"), ms(b, "base"), ms(b, "max"), ms(hb, "interval"), ms(hb, "timeout"), ms(o, "connectTimeout")];
    const W = o?.WebSocket ?? globalThis.WebSocket;
    if (o?.WebSocket != null && typeof o.WebSocket != "function") throw new TypeError("option WebSocket must be a constructor");
    const report = (out, target) => this.#report(out, target);
    // `shared`: the tab's side of the shared worker (shared.js), loaded only when asked for.
    const start = (shared) => {
      if (this.#closed) return;
      if (shared) this.#d = new shared.SharedDriver(url, opts, report, { wasm, strings, text });
      else if (typeof W != "function") {
        return this.#end("no WebSocket in this runtime: pass one as the `WebSocket` option (in Node 20: `new RealtimeClient(url, { WebSocket })` with the `ws` package)");
      } else this.#d = new Driver(url, opts, W, report);
      for (const f of this.#q.splice(0)) f();
    };
    const failed = (e) => this.#end(`the wasm could not be loaded (${message(e)}); see "Troubleshooting" in the package's README`);
    if (o?.shared && typeof SharedWorker == "function") Promise.all([import("./shared.js"), init()]).then(([m]) => start(m), failed);
    else if (wasm) start();
    else init().then(() => start(), failed);
  }

  /** Runs `f` now, or once the wasm is loaded. */
  #run(f) {
    if (this.#d) f(this.#d);
    else this.#q.push(() => f(this.#d));
  }

  /** Closed for good without a session (no wasm, no WebSocket). */
  #end(reason) {
    this.#report(["S", "closed", reason]);
    this.#closed = true;
  }

  /** One output of the session (sdk-wasm/src/abi.rs), to `r`: a subscription's record or a request's `[resolve, reject]`. */
  #report(o, r) {
    const [k, a, b, c, d, e] = o;
    if (k == "S") {
      this.#state = a;
      this.#reason = b;
      const s = put(put(put({ state: a, reason: b }, "code", c), "retryIn", d), "attempt", e);
      for (const f of this.#states.slice()) call(f, s);
      if (a == "connected") settle(this.#waiting);
      if (a == "closed") settle(this.#waiting, put(new Error(b), "code", c));
    } else if (k == "E") {
      const err = put({}, "code", a);
      err.message = b;
      for (const f of this.#errors.slice()) call(f, err);
    } else if (k == "R") {
      if (b != null) r?.[0](b);
      else r?.[1](put(new Error(d), "code", c));
    } else if (r) {
      const h = r.h;
      if (k == "U") {
        r.st = b;
        if (b == "subscribed") settle(r.w);
        else if (b != "subscribing") settle(r.w, new Error(e ?? b));
        call(h.s, put(put(put({ channel: r.c, state: b }, "recovered", c), "code", d), "message", e));
      } else if (k == "M") call(h.e, b);
      else if (k == "G") call(h.x, b);
      else if (k == "P") {
        const g = put(put({ channel: r.c }, "lastSeq", b), "resumeSeq", c);
        g.reason = d;
        call(h.g, g);
      }
      else if (k == "L") call(h.m, { channel: r.c, members: (r.m = members(b)) });
      else if (k == "J") {
        r.m = members(d);
        call(c ? h.j : h.l, { channel: r.c, user: b });
      }
    }
  }

  subscribe(channel, e, o) {
    if (typeof e != "function") throw new TypeError("callback must be a function");
    const h = { e, s: fn(o, "onState"), g: fn(o, "onGap"), m: fn(o, "onPresence"), j: fn(o, "onJoin"), l: fn(o, "onLeave"), x: fn(o, "onSignal") };
    if (this.#closed) throw new Error("client closed");
    const presence = o?.presence || h.m || h.j || h.l ? 1 : 0;
    const p = o?.since;
    if (p != null && !(Number.isSafeInteger(p.seq) && p.seq >= 0 && typeof p.epoch == "string")) throw new TypeError("since must be { seq, epoch }");
    const since = p ? `${p.seq} ${p.epoch}` : "";
    const r = { c: channel, h, st: "subscribing", m: [], w: [], id: 0 };
    const go = (d) => {
      if (r.st == "unsubscribed") return;
      try {
        // Registered before the pump: the session may report to it at once.
        d.subs.set((r.id = d.call(SUBSCRIBE, presence, channel, since)), r);
      } finally {
        d.pump();
      }
    };
    if (this.#d) go(this.#d);
    else {
      this.#q.push(() => {
        try {
          go(this.#d);
        } catch (err) {
          this.#report(["U", 0, "failed", null, null, message(err)], r);
        }
      });
    }
    const driver = () => this.#d;
    const handle = {
      channel,
      get state() {
        return r.st;
      },
      get members() {
        return r.m;
      },
      get position() {
        return (r.id && driver()?.position(r.id)) || null;
      },
      unsubscribe: () => {
        if (r.st == "unsubscribed") return;
        if (r.id) this.#d.input(UNSUBSCRIBE, r.id);
        r.st = "unsubscribed";
        settle(r.w, new Error("unsubscribed"));
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
    if (!this.#closed) this.#run((d) => d.input(CONNECT));
  }

  close() {
    if (this.#closed) return;
    this.#closed = true;
    // (From inside a callback the final report comes when the callback returns.)
    this.#state = "closed";
    this.#q.length = 0;
    if (this.#d) this.#d.close();
    else this.#report(["S", "closed", "closed by the application"]);
  }

  signal(channel, event, data) {
    try {
      return !!this.#d?.input(SIGNAL, 0, channel, `${event}\0${JSON.stringify(data ?? null)}`);
    } catch {
      return false; // not connected, or refused by the session: signals are never queued
    }
  }

  presence(channel) {
    return this.#request(PRESENCE_OF, channel);
  }

  history(channel, limit) {
    return this.#request(HISTORY, channel, limit ?? -1);
  }

  /** A request's promise: the driver keeps `[resolve, reject]` until the answer. */
  #request(tag, channel, a) {
    return new Promise((ok, no) => {
      if (this.#closed) throw new Error("client closed");
      this.#run((d) => {
        try {
          d.reqs.set(d.call(tag, a, channel), [ok, no]);
        } catch (e) {
          no(e);
        }
        d.pump();
      });
    });
  }
}

/** `new RealtimeClient(url, options)`. */
export const createClient = (url, o) => new RealtimeClient(url, o);
