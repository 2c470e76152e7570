// A tab's side of `shared: true` (loaded by client.js only then): the same interface as the
// Driver (driver.js), but the session lives in a SharedWorker (shared_worker.js) that holds one
// WebSocket for every tab of the origin. This tab keeps its own subscriptions, callbacks, gaps
// and presence: the worker routes each output to the tab whose subscription or request it
// concerns, and tells every tab the connection state.
//
// Channels are checked here, synchronously (a bad one throws from `subscribe`, as without the
// worker), by a local session that never connects: its ids are this tab's subscription ids.
// The worker learns that the tab is gone when the tab's Web Lock is released (closed, crashed
// or navigated away), or from `close()`.
import { CONNECT, SIGNAL, SUBSCRIBE, UNSUBSCRIBE } from "./abi.js";

/** The prefix of the Web Lock each client holds while it lives (shared_worker.js waits on it). */
export const LOCK = "guts-realtime-client-";

export class SharedDriver {
  subs = new Map();
  reqs = new Map();
  #port;
  #core;
  #c;
  #report;
  #token;
  /** Messages written before the worker was told who this is. */
  #queue = [];
  #state = "idle";
  #reqId = 0;
  /** Each subscription's position, as the worker's session last told it. */
  #pos = new Map();
  #release;
  #closed = false;

  /**
   * `o`: the client's checked options (client.js); `report` as for the Driver; `core`: the
   * loaded wasm and its string helpers (`{ wasm, strings, text }`).
   */
  constructor(url, o, report, core) {
    this.#core = core;
    this.#report = report;
    this.#token = o[0];
    this.#c = core.wasm.new(0, 0, -1, -1, -1, -1, -1);
    const worker = new SharedWorker(new URL("./shared_worker.js", import.meta.url), { type: "module", name: "guts-realtime" });
    this.#port = worker.port;
    this.#port.onmessage = (e) => this.#on(e.data);
    const id = Math.random().toString(36).slice(2) + Date.now().toString(36);
    const hello = () => {
      this.#port.postMessage(["hello", id, url, [!!o[0], ...o.slice(1)]]);
      for (const m of this.#queue.splice(0)) this.#port.postMessage(m);
      this.#queue = null;
    };
    const locks = globalThis.navigator?.locks;
    if (!locks) hello();
    else {
      // Held until close() (or until the tab is gone); told to the worker once held.
      locks.request(LOCK + id, () => {
        hello();
        return this.#closed ? null : new Promise((done) => (this.#release = done));
      });
    }
  }

  /** Posts `m` to the worker (after the hello). */
  #send(m) {
    if (this.#queue) this.#queue.push(m);
    else this.#port.postMessage(m);
  }

  call(tag, a = 0, s1, s2) {
    if (this.#closed) throw new Error("client closed");
    if (tag == SUBSCRIBE || tag == UNSUBSCRIBE) {
      const { wasm, strings, text } = this.#core;
      const r = wasm.input(this.#c, tag, 0, a, ...strings(s1, s2));
      const refused = r < 0 && text(wasm.out(this.#c), -1 - r);
      while (wasm.poll(this.#c)); // the local session's own outputs: not needed
      if (refused !== false) throw new Error(refused);
      this.#send(tag == SUBSCRIBE ? ["sub", r, s1, a, s2] : ["unsub", a]);
      return r;
    }
    if (tag == SIGNAL) {
      this.#send(["signal", s1, s2]);
      return +(this.#state == "connected");
    }
    if (tag == CONNECT) return this.#send(["connect"]);
    // presence() and history(): answered by the worker's session.
    this.#send(["req", ++this.#reqId, tag, s1, a]);
    return this.#reqId;
  }

  input(tag, a, s1, s2) {
    return this.#closed ? 0 : this.call(tag, a, s1, s2);
  }

  pump() {}

  position(id) {
    return this.#pos.get(id) ?? null;
  }

  /** One output of the worker's session for this tab (the list in sdk-wasm/src/abi.rs). */
  #on(o) {
    const k = o[0];
    if (this.#closed) return;
    if (k == "F") return this.#answer(o[1]);
    let target;
    if (k == "S") this.#state = o[1];
    else if (k == "R") {
      target = this.reqs.get(o[1]);
      this.reqs.delete(o[1]);
    } else if (k != "E") {
      target = this.subs.get(o[1]);
      if (!target) return;
      if (o[0] == "M" || o[0] == "U") {
        const p = o.pop(); // the worker adds the subscription's position
        if (p) this.#pos.set(o[1], p);
      }
      if (o[2] == "unsubscribed") this.subs.delete(o[1]);
    }
    this.#report(o, target);
  }

  /** The worker's session needs a token: this tab's provider answers (`[gen, kind, text]` as TOKEN takes it). */
  #answer(gen) {
    const post = (a, s) => this.#send(["token", gen, a, s]);
    new Promise((ok) => ok(this.#token?.())).then(
      (v) => (typeof v == "string" || v == null ? post(0, v ?? "") : post(1, "token provider returned a non-string")),
      (e) => post(e?.unauthorized || e?.name == "UnauthorizedError" ? 2 : 1, e?.message ?? String(e)),
    );
  }

  /** This client leaves the worker; the others keep the connection. */
  close() {
    if (this.#closed) return;
    this.#closed = true;
    this.#send(["close"]);
    this.#release?.();
    this.#core.wasm.drop(this.#c);
    this.subs.clear();
    this.reqs.clear();
    this.#report(["S", "closed", "closed by the application"]);
  }
}
