// Node entry of @guts/realtime: the same wasm and JavaScript as the browser build, with the wasm
// loaded synchronously at import (so `await init()` is a no-op). Node >= 22 has a global
// WebSocket; in Node 20 pass one (`new RealtimeClient(url, { WebSocket })` with the `ws`
// package) or run with --experimental-websocket.
import { readFileSync } from "node:fs";
import { initSync } from "./guts_realtime.js";

initSync({ module: readFileSync(new URL("./guts_realtime_bg.wasm", import.meta.url)) });

export * from "./guts_realtime.js";
export { default } from "./guts_realtime.js";
