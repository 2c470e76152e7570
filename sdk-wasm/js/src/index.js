// The package's entry (@guts/realtime): the client, and the wasm loader for those who want to
// load it themselves (clients load it on their own otherwise).
export { RealtimeClient, createClient } from "./client.js";
export { default, initSync } from "./wasm.js";
