// Node 20 without any flag: the `ws` package's WebSocket, passed as the `WebSocket` option.
// Usage: node node.mjs HUB CHANNEL N — prints "subscribed", then each event's data.i, and exits
// 0 after N events.
import WebSocket from "ws";
import { RealtimeClient } from "@guts/realtime";

const [hub, channel, n] = process.argv.slice(2);
const client = new RealtimeClient(`ws://${hub}/ws`, { WebSocket });
let left = Number(n);
const sub = client.subscribe(channel, (ev) => {
  console.log(ev.data.i);
  if (--left === 0) {
    client.close();
  }
});
await sub.ready();
console.log("subscribed");
