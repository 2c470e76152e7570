// The demo page: pick channels, watch the live feed and the connection state. Uses only the
// built package @guts/realtime (copied to ./pkg/ by scripts/build-npm.sh).
import init, { RealtimeClient } from "./pkg/guts_realtime.js";

const $ = (id) => document.getElementById(id);
const feed = $("feed");
const MAX_ROWS = 200;

/** Adds a row at the top of the feed. */
function row(cls, cells) {
  const li = document.createElement("li");
  li.className = cls;
  for (const [c, text] of cells) {
    const span = document.createElement("span");
    span.className = c;
    span.textContent = text;
    li.append(span);
  }
  feed.prepend(li);
  while (feed.children.length > MAX_ROWS) feed.lastChild.remove();
  return li;
}

/** A one-line summary of an event's payload. */
function summary(ev) {
  if (ev.type === "notification") return ev.notification.title;
  const d = ev.data ?? {};
  if (d.title) return `#${d.number} ${d.title} (${d.author})`;
  if (d.pr_number) return `#${d.pr_number} ${d.state} by ${d.reviewer}`;
  if (d.parent_number) return `#${d.parent_number} ${d.author}: ${d.body_preview}`;
  if (d.pusher) return `${d.ref} ← ${d.commit_count} commit(s) by ${d.pusher}`;
  return d.ref ?? JSON.stringify(d);
}

await init();
const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`;
// Logged in as `?user=NAME` (default: a guest name), with a token guts-hub --demo mints.
const user = new URLSearchParams(location.search).get("user") || `guest${Math.floor(Math.random() * 1000)}`;
const token = async () => {
  const res = await fetch(`/demo/token?user=${encodeURIComponent(user)}`);
  if (!res.ok) throw new Error(`token: HTTP ${res.status}`);
  return res.text();
};
const client = new RealtimeClient(url, { token, backoff: { base: 250, max: 5000 } });
window.__demo = { client, events: 0, gaps: 0, states: [], user };

client.onState((s) => {
  const el = $("state");
  el.dataset.state = s.state;
  el.textContent = s.state === "reconnecting" ? `reconnecting in ${(s.retryIn / 1000).toFixed(1)} s` : s.state;
  el.title = s.reason + (s.code ? ` (${s.code})` : "");
  window.__demo.states.push(s.state);
  if (s.state !== "connecting") row("note", [["msg", `${s.state}: ${s.reason}`]]);
});

const subs = new Map();

function subscribe(channel) {
  if (subs.has(channel)) return;
  try {
    subs.set(channel, client.subscribe(channel, (ev) => {
      window.__demo.events++;
      row("event", [["ch", ev.channel], ["kind", ev.type === "event" ? ev.event : "notification"], ["what", summary(ev)], ["seq", ev.seq ?? ""]]);
    }, {
      onGap: (g) => {
        window.__demo.gaps++;
        row("gap", [["msg", `gap on ${g.channel} (${g.reason}): events after seq ${g.lastSeq ?? "?"} may be missing — a real app would refetch here`]]);
      },
    }));
    $("error").hidden = true;
  } catch (e) {
    $("error").textContent = e.message;
    $("error").hidden = false;
  }
}

for (const box of document.querySelectorAll("#channels input[type=checkbox]")) {
  if (box.checked) subscribe(box.value);
  box.addEventListener("change", () => {
    if (box.checked) subscribe(box.value);
    else { subs.get(box.value)?.unsubscribe(); subs.delete(box.value); }
  });
}
$("add").addEventListener("submit", (e) => {
  e.preventDefault();
  const ch = $("custom").value.trim();
  if (ch) subscribe(ch);
});

// The pull request panel: who is viewing it (presence) and who is typing (signals).
const PR = "repo:demo/app/prs/1";
$("me").textContent = user;
const typing = new Map(); // user → timer that clears their indicator

function showViewers(members) {
  const el = $("viewers");
  el.replaceChildren(
    ...members.map((m) => {
      const span = document.createElement("span");
      span.className = "viewer";
      span.textContent = m.connections > 1 ? `${m.user} ×${m.connections}` : m.user;
      return span;
    }),
  );
  window.__demo.viewers = members.map((m) => m.user);
}

function showTyping() {
  const who = [...typing.keys()];
  $("typing").textContent = who.length ? `${who.join(", ")} ${who.length > 1 ? "are" : "is"} typing…` : "";
  window.__demo.typing = who;
}

const pr = client.subscribe(PR, () => {}, {
  onPresence: (p) => showViewers(p.members),
  onJoin: () => showViewers(pr.members),
  onLeave: (c) => {
    typing.delete(c.user);
    showTyping();
    showViewers(pr.members);
  },
  onSignal: (s) => {
    if (s.event !== "typing") return;
    clearTimeout(typing.get(s.user));
    if (s.data?.typing) typing.set(s.user, setTimeout(() => (typing.delete(s.user), showTyping()), 3000));
    else typing.delete(s.user);
    showTyping();
  },
});

// Typing sends a signal at most once a second while keys are pressed, and "stopped" after 2 s.
let lastSent = 0;
let idle;
$("comment").addEventListener("input", () => {
  const now = Date.now();
  if (now - lastSent > 1000) {
    client.signal(PR, "typing", { typing: true });
    lastSent = now;
  }
  clearTimeout(idle);
  idle = setTimeout(() => {
    client.signal(PR, "typing", { typing: false });
    lastSent = 0;
  }, 2000);
});
