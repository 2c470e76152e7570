// The SharedWorker of `shared: true` (dist/shared_worker.js): one session, and so one WebSocket,
// per hub URL and options for every tab of the origin that asks for it. Each tab's client talks
// to it through its port (shared.js is the other side): the tab's subscriptions and requests
// become the session's, under ids of the session; each output goes back to the tab it concerns
// (under the tab's own id), and the connection state to every tab. When a tab goes (its Web Lock
// is released, or it says `close`), its subscriptions are dropped; when the last one goes, the
// session closes.
import init from "./wasm.js";
import { Driver, message } from "./driver.js";
import { CONNECT, SIGNAL, SUBSCRIBE, UNSUBSCRIBE } from "./abi.js";
import { LOCK } from "./shared.js";

/** Sessions by hub URL and options: `{ d, tabs, last, key }` (`last`: the last state output). */
const sessions = new Map();
const ready = init();
/** Token requests waiting for a tab's answer, by generation: `[resolve, reject, tab]`. */
const asks = new Map();
let gen = 0;

globalThis.onconnect = (e) => {
  const port = e.ports[0];
  /** One client of one tab: its session, and its ids (the tab's → the session's). */
  const tab = { port, s: null, subs: new Map(), reqs: new Map() };
  port.onmessage = (m) => ready.then(() => on(tab, m.data), (err) => port.postMessage(["S", "closed", `the wasm could not be loaded (${message(err)})`]));
};

/** One message of a tab. */
function on(tab, m) {
  const k = m[0];
  if (k == "hello") return attach(tab, m);
  if (k == "token") {
    const a = asks.get(m[1]);
    asks.delete(m[1]);
    if (a) m[2] ? a[1](Object.assign(new Error(m[3]), { name: m[2] == 2 ? "UnauthorizedError" : "Error" })) : a[0](m[3]);
    return;
  }
  if (k == "close") return detach(tab);
  const d = tab.s?.d;
  if (!d) return;
  if (k == "sub" || k == "req") {
    const [, local, a, b, c, since] = m;
    try {
      if (k == "sub") {
        const id = d.call(SUBSCRIBE, b, a, since);
        d.subs.set(id, { tab, local });
        tab.subs.set(local, id);
      } else d.reqs.set(d.call(a, c, b), { tab, local });
    } catch (err) {
      port(tab, k == "sub" ? ["U", local, "failed", null, null, message(err), null] : ["R", local, null, null, message(err)]);
    }
    return d.pump();
  }
  try {
    if (k == "unsub") {
      const id = tab.subs.get(m[1]);
      tab.subs.delete(m[1]);
      if (id) d.input(UNSUBSCRIBE, id);
    } else if (k == "signal") d.input(SIGNAL, 0, m[1], m[2]);
    else if (k == "connect") d.input(CONNECT);
  } catch {}
}

/** Posts `o` to the tab. */
function port(tab, o) {
  tab.port.postMessage(o);
}

/** A tab's client says who it is: it joins (or starts) the session of its URL and options. */
function attach(tab, [, id, url, opts]) {
  const key = JSON.stringify([url, opts]);
  let s = sessions.get(key);
  if (!s) {
    s = { tabs: new Set(), last: null, key };
    const provider = opts[0] ? () => askToken(s) : undefined;
    s.d = new Driver(url, [provider, ...opts.slice(1)], WebSocket, (o, target) => report(s, o, target));
    sessions.set(key, s);
  }
  tab.s = s;
  s.tabs.add(tab);
  if (s.last) port(tab, s.last);
  // Granted when the tab's client lets its lock go: closed, or the tab is gone.
  globalThis.navigator?.locks?.request(LOCK + id, () => detach(tab));
}

/** A tab's client is gone: its subscriptions go, and the session with the last one. */
function detach(tab) {
  const s = tab.s;
  if (!s) return;
  tab.s = null;
  s.tabs.delete(tab);
  for (const [g, a] of asks) {
    if (a[2] == tab) {
      asks.delete(g);
      a[1](new Error("the tab that was asked for a token went away"));
    }
  }
  if (!s.tabs.size) {
    sessions.delete(s.key);
    return s.d.close();
  }
  for (const id of tab.subs.values()) s.d.input(UNSUBSCRIBE, id);
}

/** The session asks for a token: the most recent tab's provider answers. */
function askToken(s) {
  return new Promise((ok, no) => {
    const tab = [...s.tabs].pop();
    if (!tab) return no(new Error("no tab to ask for a token"));
    asks.set(++gen, [ok, no, tab]);
    port(tab, ["F", gen]);
  });
}

/** One output of a session: to the tab of its subscription or request (under the tab's id), or to every tab. */
function report(s, o, target) {
  if (target) {
    if (o[0] == "U" && o[2] == "unsubscribed") target.tab.subs.delete(target.local);
    // The subscription's position, which only the session knows, goes with its events.
    if (o[0] == "M" || o[0] == "U") o.push(s.d.position(o[1]));
    o[1] = target.local;
    return port(target.tab, o);
  }
  if (o[0] == "A") return;
  if (o[0] == "S") s.last = o;
  for (const tab of s.tabs) port(tab, o);
}
