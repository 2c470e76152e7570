// The hooks of the npm tests of the shared wire vectors (npm/test/vectors.test.mjs), in a test
// copy of the bundle with the wasm built with feature `vectors`; never in the package.
import { initSync, strings, text, wasm } from "./wasm.js";
import { read } from "./frames.js";

export { initSync };

const KINDS = ["welcome", "authenticated", "subscribed", "unsubscribed", "pong", "error", "event", "event", "presence", "join", "leave", "signal", "history", "other"];
const FIELDS = {
  welcome: [, , , "epoch"],
  authenticated: ["id", "expires_in", , "user"],
  subscribed: ["id", "seq", "recovered", "channel"],
  unsubscribed: ["id", , , "channel", "reason"],
  pong: ["id"],
  error: ["id", , , "code", "message"],
  event: [, "seq", "item", "channel", "event"],
  presence: ["id", , , "channel"],
  join: [, , , "channel", "user"],
  leave: [, , , "channel", "user"],
  signal: [, , , "channel"],
  history: ["id"],
  other: [],
};

/** What the driver passes the session for the frame `text` (frames.js), by name; absent fields left out. */
export function decodeFrame(t) {
  let f;
  try {
    f = JSON.parse(t);
  } catch {}
  const [kind, ...v] = read(f);
  const name = KINDS[kind];
  const seen = { kind: name };
  FIELDS[name].forEach((k, i) => {
    if (k && v[i] != null && v[i] !== -1) seen[k] = k == "recovered" ? v[i] == 1 : v[i];
  });
  if (v[5]) seen.members = v[5];
  return seen;
}

/** The exact text the session sends for the client frame `value`, through its one encoder. */
export function encodeCommand(value) {
  const c = wasm.new(0, 0, -1, -1, -1, -1, -1);
  try {
    const n = wasm.encode(c, ...strings(JSON.stringify(value)).slice(0, 2));
    const out = text(wasm.out(c), n);
    if (!out.startsWith("{")) throw new Error(out);
    return out;
  } finally {
    wasm.drop(c);
  }
}
