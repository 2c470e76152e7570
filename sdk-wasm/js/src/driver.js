// The driver: one session (in wasm) and the I/O around it: a WebSocket, one timer, the token
// provider and the page's lifecycle. Every decision (when to connect, what to send, who gets
// which event, backoff, heartbeat, dedupe, gaps, presence, requests) is the session's; the
// driver feeds it inputs and carries out its outputs, and hands the rest to the client
// (client.js) through `report(output, target)`.
//
// After every input, `pump` takes the outputs to quiescence (`poll`: actions, then frames to
// send, then events), then arms the timer for the session's next deadline. Application callbacks
// run from the pump and may call back into the client: a nested pump returns at once and the
// outer one takes what the callback caused.
import { wasm, strings, text } from "./wasm.js";
import { read } from "./frames.js";
import { CLOSE, CLOSE_CLIENT, CONNECT, OPEN, PAGE, TIMER, TOKEN } from "./abi.js";

const PAGE_EVENTS = { online: 1, offline: 2, pageshow: 3, pagehide: 4 };

/** The session's clock, in ms. */
const now = () => performance.now();

/** The text of a thrown value: its `message` when it has one. */
export const message = (e) => (typeof e?.message == "string" ? e.message : typeof e == "string" ? e : "error");

export class Driver {
  /** The session (its handle in wasm; 0 once released). */
  #c;
  #url;
  #provider;
  #W;
  #report;
  /** The frames the session holds by id during one pump (its payloads). */
  #payloads = [];
  /** Bumped at each token request: a late answer to an abandoned one is dropped. */
  #gen = 0;
  #unlisten;
  #ws;
  /** The armed `setTimeout`, and the deadline it fires for. */
  #timer;
  #at;
  #busy;
  #closing;
  /** Subscription records by id (where each one's outputs go). */
  subs = new Map();
  /** Requests waiting for their answer: `[resolve, reject]` by id. */
  reqs = new Map();

  /**
   * A session for `url`: `o` the checked options (`[token, backoff.base, backoff.max,
   * heartbeat.interval, heartbeat.timeout, connectTimeout]`, NaN when absent), `W` the WebSocket
   * constructor, `report(output, target)` where the application's outputs go. Connects on the
   * next microtask, so listeners added right after see the first state.
   */
  constructor(url, o, W, report) {
    const ms = (v) => (v >= 0 ? v : -1);
    this.#c = wasm.new(Math.random() * 2 ** 53, o[0] ? 1 : 0, ms(o[1]), ms(o[2]), ms(o[3]), ms(o[4]), ms(o[5]));
    this.#url = url;
    this.#provider = o[0];
    this.#W = W;
    this.#report = report;
    this.#unlisten = this.#listen();
    queueMicrotask(() => this.input(CONNECT));
  }

  /**
   * One input or command (abi.js) with its number `a` and strings, without the pump. Returns
   * what the command makes (an id, 1); throws the session's refusal as an `Error`.
   */
  call(tag, a = 0, s1, s2) {
    if (!this.#c) throw new Error("client closed");
    const r = wasm.input(this.#c, tag, now(), a, ...strings(s1, s2));
    if (r < 0) throw new Error(text(wasm.out(this.#c), -1 - r));
    return r;
  }

  /** `call`, then the pump; a no-op once closed. */
  input(tag, a, s1, s2) {
    if (!this.#c) return 0;
    try {
      return this.call(tag, a, s1, s2);
    } finally {
      this.pump();
    }
  }

  /** Subscription `id`'s position, `{ seq, epoch }` (null before it has one). */
  position(id) {
    const n = this.#c && wasm.position(this.#c, id);
    if (!n) return null;
    const [seq, epoch] = JSON.parse(text(wasm.out(this.#c), n));
    return { seq, epoch };
  }

  /** A message from the socket. */
  #frame(data) {
    if (!this.#c) return;
    let f;
    try {
      f = JSON.parse(data);
    } catch {}
    const [kind, id = -1, a = -1, b = -1, s1, s2, members] = read(f);
    for (const [user, n] of members ?? []) wasm.member(this.#c, ...strings(user).slice(0, 2), n);
    wasm.frame(this.#c, now(), kind, id, a, b, ...strings(s1, s2), this.#payloads.push(f) - 1);
    this.pump();
  }

  /** Carries out the session's outputs until there are none (see the top of this file). */
  pump() {
    if (this.#busy || !this.#c) return;
    this.#busy = true;
    for (let n; (n = wasm.poll(this.#c)); ) this.#output(text(wasm.out(this.#c), n));
    this.#busy = false;
    this.#payloads.length = 0;
    if (this.#closing) this.#shutdown();
    else this.#arm();
  }

  /** One output of the session (the list in sdk-wasm/src/abi.rs). */
  #output(t) {
    if (t[0] == "T") return this.#ws?.readyState == 1 && this.#ws.send(t.slice(1));
    const o = JSON.parse(t);
    const k = o[0];
    if (k == "F") return this.#token();
    if (k == "C") return this.#open();
    // Browsers take only 1000 and 3000–4999 from scripts.
    if (k == "X") return this.#detach(o[1] == 1000 || (o[1] >= 3000 && o[1] < 5000) ? o[1] : 1000, o[2]);
    // After close() (perhaps from a callback earlier in this pump) only the final state is told.
    if (this.#closing && o[1] != "closed") return;
    let target;
    if (k == "R") {
      target = this.reqs.get(o[1]);
      this.reqs.delete(o[1]);
      if (o[2] != null) o[2] = this.#payloads[o[2]];
    } else if ("UMGPLJ".includes(k)) {
      target = this.subs.get(o[1]);
      if (!target) return;
      if (o[2] == "unsubscribed") this.subs.delete(o[1]);
      if (k == "M" || k == "G") o[2] = this.#payloads[o[2]];
    }
    this.#report(o, target);
  }

  /** Asks the token provider (none: anonymous); the answer comes back as a TOKEN input. */
  #token() {
    const g = ++this.#gen;
    const answer = (a, s) => g == this.#gen && this.input(TOKEN, a, s);
    if (!this.#provider) return answer(0, "");
    new Promise((ok) => ok(this.#provider())).then(
      (v) => (typeof v == "string" || v == null ? answer(0, v ?? "") : answer(1, "token provider returned a non-string")),
      (e) => answer(e?.unauthorized || e?.name == "UnauthorizedError" ? 2 : 1, message(e)),
    );
  }

  /** Opens a socket and wires it to the session. */
  #open() {
    let ws;
    try {
      ws = new this.#W(this.#url);
    } catch (e) {
      return this.input(CLOSE, 1006, message(e));
    }
    this.#detach();
    this.#ws = ws;
    ws.onopen = () => this.input(OPEN);
    ws.onmessage = (e) => this.#frame(e.data);
    // `error` means the connection failed (1006). Browsers follow it with `close`, Node 20 does
    // not when the connection is refused: the first of the two is reported, the socket detached.
    ws.onclose = (e) => this.#lost(e.code, e.reason);
    ws.onerror = () => this.#lost(1006, "connection failed");
  }

  /** The socket closed or failed. */
  #lost(code, reason) {
    this.#detach();
    this.input(CLOSE, code, reason);
  }

  /** Unwires and closes the socket, with `code` and `reason` when given. */
  #detach(code, reason) {
    const ws = this.#ws;
    if (!ws) return;
    this.#ws = null;
    ws.onopen = ws.onmessage = ws.onclose = null;
    // Node's `ws` emits `error` when a socket still connecting is closed: keep a listener.
    ws.onerror = () => {};
    try {
      code ? ws.close(code, reason) : ws.close();
    } catch {}
  }

  /**
   * Arms the timer for the session's next deadline. One armed for an earlier moment is kept:
   * firing early is harmless (the session compares deadlines with the time) and re-arms, so the
   * stream of frames that pushes the heartbeat deadline back costs no timer churn.
   */
  #arm() {
    const at = wasm.timeout(this.#c);
    if (at >= 0 && this.#timer && this.#at <= at) return;
    clearTimeout(this.#timer);
    this.#timer = 0;
    if (at < 0) return;
    this.#at = at;
    this.#timer = setTimeout(() => {
      this.#timer = 0;
      this.input(TIMER);
    }, Math.min(Math.max(Math.ceil(at - now()), 0), 2e9));
  }

  /** Listens to the page where there is one; returns the function that stops it. */
  #listen() {
    const g = globalThis;
    const d = g.document;
    if (typeof g.addEventListener != "function") return;
    const f = (e) => {
      const k = PAGE_EVENTS[e.type] ?? (d?.visibilityState == "visible" ? 3 : 0);
      if (k) this.input(PAGE, k);
    };
    for (const t in PAGE_EVENTS) g.addEventListener(t, f);
    d?.addEventListener("visibilitychange", f);
    return () => {
      for (const t in PAGE_EVENTS) g.removeEventListener(t, f);
      d?.removeEventListener("visibilitychange", f);
    };
  }

  /** `close()`: the session closes; the pump that reports `closed` releases everything. */
  close() {
    this.#closing = true;
    this.input(CLOSE_CLIENT);
  }

  /** Releases the socket, the timer, the page listeners, the records and the session. */
  #shutdown() {
    this.#detach(1000, "client closed");
    clearTimeout(this.#timer);
    this.#unlisten?.();
    this.#gen++;
    this.subs.clear();
    this.reqs.clear();
    wasm.drop(this.#c);
    this.#c = 0;
  }
}
