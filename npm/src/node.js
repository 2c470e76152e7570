// Node entry of @guts/realtime: the same wasm and glue as the browser build, initialised
// synchronously at import, so `await init()` is a no-op. Needs a global WebSocket: Node >= 22,
// or Node 20 with --experimental-websocket.
import { readFileSync } from "node:fs";
import { initSync } from "./guts_realtime.js";

initSync({ module: readFileSync(new URL("./guts_realtime_bg.wasm", import.meta.url)) });

export * from "./guts_realtime.js";
export { default } from "./guts_realtime.js";
