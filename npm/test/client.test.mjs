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

test("callbacks may call back into the client: unsubscribe, subscribe and close from inside them", { skip: !HUB && "GUTS_TEST_HUB not set" }, async () => {
  const stamp = Date.now();
  const [ch1, ch2] = [`repo:node/reenter1-${stamp}`, `repo:node/reenter2-${stamp}`];
  const publish = async (channel, n) => {
    const res = await fetch(`http://${HUB}/api/publish`, {
      method: "POST",
      headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json" },
      body: JSON.stringify({ channel, event: "push", data: { number: n } }),
    });
    assert.equal(res.status, 200);
  };
  const client = new RealtimeClient(`ws://${HUB}/ws`);
  const seen = [];
  let sub2Live = false;
  // Reads the client's state from inside its own state listener.
  client.onState((s) => seen.push(`state:${s.state}=${client.state}`));
  const sub1 = client.subscribe(
    ch1,
    (ev) => {
      seen.push(`ev1:${ev.data.number}`);
      // From inside the subscription's own callback: stop it, and subscribe elsewhere.
      sub1.unsubscribe();
      seen.push(`sub1:${sub1.state}`);
      client.subscribe(
        ch2,
        (ev2) => {
          seen.push(`ev2:${ev2.data.number}`);
          client.close(); // from inside an event callback
          seen.push(`after-close:${client.state}`);
        },
        { onState: (st) => (sub2Live ||= st.state === "subscribed") },
      );
    },
    { onState: (st) => seen.push(`sub1-state:${st.state}`) },
  );
  try {
    await until(() => seen.includes("sub1-state:subscribed"), 5000, "ch1 subscribed");
    await publish(ch1, 1);
    await until(() => sub2Live, 5000, "ch2 subscribed from inside the callback");
    await publish(ch1, 2); // unsubscribed: not delivered
    await publish(ch2, 1);
    await until(() => seen.includes("ev2:1"), 5000, "the ch2 event");
    await new Promise((r) => setTimeout(r, 100));
  } finally {
    client.close(); // (idempotent; leaves nothing running when an assertion failed)
  }
  assert.deepEqual(seen.filter((s) => /^(ev|sub1:|after)/.test(s)), ["ev1:1", "sub1:unsubscribed", "ev2:1", "after-close:closed"]);
  assert.ok(seen.includes("state:connected=connected"), seen.join(" "));
  assert.equal(seen.filter((s) => s.startsWith("state:")).at(-1), "state:closed=closed");
  assert.equal(client.state, "closed");
});

test("presence, signals and history in Node", { skip: !(HUB && process.env.GUTS_TEST_TOKEN_BOB) && "GUTS_TEST_HUB or tokens not set" }, async () => {
  const channel = `repo:node/collab-${Date.now()}/prs/4`;
  const alice = new RealtimeClient(`ws://${HUB}/ws`, { token: () => process.env.GUTS_TEST_TOKEN });
  const bob = new RealtimeClient(`ws://${HUB}/ws`, { token: () => process.env.GUTS_TEST_TOKEN_BOB });
  const seen = [];
  try {
    const a = alice.subscribe(channel, () => {}, {
      onPresence: (p) => seen.push(`list ${p.members.map((m) => `${m.user}:${m.connections}`).join(",")}`),
      onJoin: (c) => seen.push(`join ${c.user}`),
      onLeave: (c) => seen.push(`leave ${c.user}`),
      onSignal: (s) => seen.push(`signal ${s.event} ${JSON.stringify(s.data)} from ${s.user}`),
    });
    await until(() => seen.includes("list alice:1"), 5000, "alice's member list");
    let bobLive = false;
    const b = bob.subscribe(channel, () => {}, { presence: true, onState: (s) => (bobLive ||= s.state === "subscribed") });
    await until(() => seen.includes("join bob") && bobLive, 5000, "bob joins");
    assert.deepEqual(a.members, [{ user: "alice", connections: 1 }, { user: "bob", connections: 1 }]);
    assert.equal(bob.signal(channel, "typing", { line: 2 }), true);
    await until(() => seen.some((s) => s.startsWith("signal")), 5000, "the signal");
    assert.equal(seen.find((s) => s.startsWith("signal")), 'signal typing {"line":2} from bob');
    const who = await bob.presence(channel);
    assert.deepEqual(who.members.map((m) => m.user), ["alice", "bob"]);
    b.unsubscribe();
    await until(() => seen.includes("leave bob"), 5000, "bob leaves");
    // History, then a subscribe from its position: nothing missed, nothing twice.
    const base = channel.replace(/\/prs\/4$/, "");
    for (const n of [4, 5, 4]) {
      const res = await fetch(`http://${HUB}/api/publish`, {
        method: "POST",
        headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json" },
        body: JSON.stringify({ channel: base, event: "pr_updated", data: { number: n } }),
      });
      assert.equal(res.status, 200);
    }
    const h = await alice.history(channel, 10);
    assert.equal(h.type, "history");
    assert.deepEqual(h.events.map((e) => e.data.number), [4, 4]);
    await assert.rejects(alice.history(channel, 0), (e) => e.code === "invalid_message");
    await assert.rejects(alice.history("nope"), /invalid channel/);
  } finally {
    alice.close();
    bob.close();
  }
  assert.equal(bob.signal(channel, "typing", {}), false, "not connected: not sent");
});

test("invalid input throws: a URL that is not ws(s), bad options, an invalid channel, a closed client", () => {
  assert.throws(() => new RealtimeClient("http://x"), /ws:\/\/ or wss:\/\//);
  assert.throws(() => new RealtimeClient("ws://127.0.0.1:9/ws", { backoff: { base: -1 } }), /milliseconds/);
  assert.throws(() => new RealtimeClient("ws://127.0.0.1:9/ws", { token: "not a function" }), /function/);
  const client = new RealtimeClient("ws://127.0.0.1:9/ws");
  assert.throws(() => client.subscribe("repo:nope", () => {}), /invalid channel/);
  assert.throws(() => client.subscribe("repo:a/b"), /callback must be a function/);
  client.close();
  assert.throws(() => client.subscribe("repo:a/b", () => {}), /client closed/);
});

test("a valid token authenticates", { skip: !(HUB && process.env.GUTS_TEST_TOKEN) && "GUTS_TEST_HUB or token not set" }, async () => {
  const client = new RealtimeClient(`ws://${HUB}/ws`, { token: async () => process.env.GUTS_TEST_TOKEN });
  const states = [];
  client.onState((s) => states.push(s.state));
  await client.ready();
  client.close();
  assert.deepEqual(states, ["connecting", "authenticating", "connected", "closed"]);
});

test("a rejected token is terminal: closed with 4001, nothing retries", { skip: !HUB && "GUTS_TEST_HUB not set" }, async () => {
  const client = new RealtimeClient(`ws://${HUB}/ws`, { token: async () => "not-a-token", backoff: { base: 100, max: 1000 } });
  const states = [];
  client.onState((s) => states.push(s));
  await assert.rejects(client.ready(), (e) => e.code === 4001 && /^unauthenticated/.test(e.message));
  await new Promise((r) => setTimeout(r, 600));
  assert.equal(states.at(-1).state, "closed");
  assert.equal(states.filter((s) => s.state === "connecting").length, 1);
  client.close();
});

test("a provider rejecting with an UnauthorizedError stops at once", async () => {
  const client = new RealtimeClient("ws://127.0.0.1:9/ws", {
    token: () => Promise.reject(Object.assign(new Error("signed out"), { name: "UnauthorizedError" })),
  });
  const states = [];
  client.onState((s) => states.push(s));
  await assert.rejects(client.ready(), /signed out/);
  assert.deepEqual(states.map((s) => s.state), ["connecting", "closed"]);
  client.close();
});

test("a refused connection reconnects with backoff, within the bounds", async () => {
  // Nothing listens on port 9 of 127.0.0.1: each attempt fails, the session backs off.
  const client = new RealtimeClient("ws://127.0.0.1:9/ws", { backoff: { base: 100, max: 1000 } });
  const waits = [];
  client.onState((s) => s.state === "reconnecting" && waits.push(s.retryIn));
  await until(() => waits.length >= 2, 5000, "two reconnect waits");
  client.close();
  assert.ok(waits.every((w) => w >= 0 && w <= 1000), waits.join(","));
  assert.equal(client.state, "closed");
});

/** A scripted hub behind the `WebSocket` option: answers each subscribe with `subscribed`, then sends `frames(channel)`. */
function scripted(frames) {
  return class FakeSocket {
    constructor() {
      this.readyState = 0;
      queueMicrotask(() => {
        this.readyState = 1;
        this.onopen?.({});
        this.onmessage?.({ data: JSON.stringify({ type: "welcome", epoch: "ep-1", client_id: "c" }) });
      });
    }
    send(text) {
      const f = JSON.parse(text);
      if (f.type !== "subscribe") return;
      const out = [{ type: "subscribed", channel: f.channel, seq: 0, id: f.id }, ...frames(f.channel)];
      setTimeout(() => out.forEach((o) => this.onmessage?.({ data: JSON.stringify(o) })), 0);
    }
    close() {
      this.readyState = 3;
    }
  };
}

test("an event of a kind this version does not know is delivered with its kind, in order", async () => {
  const W = scripted((channel) => [
    { type: "event", channel, event: "pr_auto_merge_enabled", data: { number: 7 }, timestamp: 1, event_id: "e1", seq: 1 },
    { type: "event", channel, event: "push", data: {}, timestamp: 2, event_id: "e2", seq: 2 },
  ]);
  const client = new RealtimeClient("ws://scripted.invalid/ws", { WebSocket: W });
  const seen = [];
  client.subscribe("repo:js/newer", (ev) => seen.push(`${ev.event}@${ev.seq}`));
  await until(() => seen.length === 2, 5000, "two events");
  client.close();
  assert.deepEqual(seen, ["pr_auto_merge_enabled@1", "push@2"]);
});

test("without any WebSocket the client closes at once with a reason naming the option", async () => {
  const saved = globalThis.WebSocket;
  delete globalThis.WebSocket;
  try {
    const client = new RealtimeClient("ws://127.0.0.1:9/ws");
    await assert.rejects(client.ready(), /`WebSocket` option/);
    assert.equal(client.state, "closed");
  } finally {
    globalThis.WebSocket = saved;
  }
});

test("shared: true without a SharedWorker (Node) falls back to the client's own socket", { skip: !HUB && "GUTS_TEST_HUB not set" }, async () => {
  assert.equal(typeof SharedWorker, "undefined");
  const channel = `repo:node/shared-${Date.now()}`;
  const client = new RealtimeClient(`ws://${HUB}/ws`, { shared: true });
  const got = [];
  const sub = client.subscribe(channel, (ev) => got.push(ev.data.n));
  await sub.ready();
  const res = await fetch(`http://${HUB}/api/publish`, {
    method: "POST",
    headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json" },
    body: JSON.stringify({ channel, event: "push", data: { n: 1 } }),
  });
  assert.equal(res.status, 200);
  await until(() => got.length === 1, 5000, "the event");
  client.close();
});

test("sub.position, then subscribe({ since }) in a new client: the missed events, none twice", { skip: !HUB && "GUTS_TEST_HUB not set" }, async () => {
  const channel = `repo:node/resume-${Date.now()}`;
  const post = async (n) => {
    const res = await fetch(`http://${HUB}/api/publish`, {
      method: "POST",
      headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json" },
      body: JSON.stringify({ channel, event: "push", data: { n } }),
    });
    return (await res.json()).seq;
  };
  const first = new RealtimeClient(`ws://${HUB}/ws`);
  const got = [];
  const sub = first.subscribe(channel, (ev) => got.push(ev.data.n));
  await sub.ready();
  const seq1 = await post(1);
  await until(() => got.length === 1, 5000, "the first event");
  const saved = sub.position;
  assert.equal(saved.seq, seq1);
  assert.equal(typeof saved.epoch, "string");
  first.close();
  // While no one listens:
  await post(2);
  await post(3);
  const second = new RealtimeClient(`ws://${HUB}/ws`);
  const later = [];
  let recovered;
  const resumed = second.subscribe(channel, (ev) => later.push(ev.data.n), { since: saved, onState: (s) => s.state === "subscribed" && (recovered = s.recovered) });
  await until(() => later.length === 2, 5000, "the missed events");
  assert.deepEqual(later, [2, 3]);
  assert.equal(recovered, true);
  assert.equal(resumed.position.seq, seq1 + 2);
  assert.throws(() => second.subscribe(channel, () => {}, { since: { seq: -1, epoch: "x" } }), /since must be/);
  second.close();
});

test("a 1012 close with a retry_after_ms hint (a hub restarting) is honoured: no attempt before it", async () => {
  const opened = [];
  class RestartingHub {
    constructor() {
      this.readyState = 0;
      opened.push(Date.now());
      const first = opened.length === 1;
      queueMicrotask(() => {
        this.readyState = 1;
        this.onopen?.({});
        this.onmessage?.({ data: JSON.stringify({ type: "welcome", epoch: "ep-1", client_id: "c" }) });
        if (first) {
          setTimeout(() => {
            this.readyState = 3;
            this.onclose?.({ code: 1012, reason: "server restarting; retry_after_ms=1500", wasClean: true });
          }, 20);
        }
      });
    }
    send() {}
    close() {
      this.readyState = 3;
    }
  }
  const client = new RealtimeClient("ws://scripted.invalid/ws", { WebSocket: RestartingHub, backoff: { base: 100, max: 1000 } });
  const waits = [];
  client.onState((s) => s.state === "reconnecting" && waits.push(s));
  await until(() => opened.length === 2, 5000, "the second connection");
  client.close();
  assert.equal(waits.length, 1);
  assert.equal(waits[0].code, 1012);
  // The hint plus the first backoff step (at most the base, 100 ms).
  assert.ok(waits[0].retryIn >= 1500 && waits[0].retryIn <= 1600, `retryIn ${waits[0].retryIn}`);
  const gap = opened[1] - opened[0];
  assert.ok(gap >= 1500, `reconnected after ${gap} ms`);
});
