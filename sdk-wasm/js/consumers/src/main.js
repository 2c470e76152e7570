// A page as a newcomer writes it: no init() call, the client loads its wasm by itself. The hub's
// address and the channel come from the page's query (?hub=127.0.0.1:PORT&channel=…&shared=1:
// one connection per origin, through the package's SharedWorker).
import { RealtimeClient } from "@guts/realtime";

const q = new URLSearchParams(location.search);
const client = new RealtimeClient(`ws://${q.get("hub")}/ws`, { shared: q.has("shared") });
window.seen = [];
window.states = [];
client.onState((s) => window.states.push(s.state));
client.subscribe(q.get("channel"), (ev) => {
  window.seen.push(ev.data.i);
  const li = document.createElement("li");
  li.textContent = `${ev.event} ${JSON.stringify(ev.data)}`;
  document.getElementById("events").append(li);
}, { onState: (s) => (window.subscribed ||= s.state === "subscribed") });
