// Server frames → the fields the session reads (the arguments of the wasm's `frame`). The
// browser's JSON.parse made the object; only what routing, dedupe, recovery and presence need is
// read, and the object itself is what the application receives. Anything this client does not
// understand (not an object, an unknown `type`, a missing field) is OTHER: it proves the link
// alive and is otherwise ignored. An event of a kind this version does not know is an event
// still, for the channels that take every kind.
import {
  AUTHENTICATED, ERROR, EVENT, HISTORY_FRAME, JOIN, LEAVE, NOTIFICATION, OTHER, PONG, PRESENCE,
  SIGNAL_FRAME, SUBSCRIBED, UNSUBSCRIBED, WELCOME,
} from "./abi.js";

/** A non-negative integer (ids, seqs, items), else −1 (absent). */
const uint = (v) => (Number.isSafeInteger(v) && v >= 0 ? v : -1);

/** A string, else undefined (empty for the session). */
const str = (v) => (typeof v == "string" ? v : undefined);

/**
 * The session's view of frame `f`: `[kind, id, a, b, s1, s2, members]` as the wasm's `frame`
 * takes them (−1 and undefined where absent; `members`: `[[user, connections], …]` of a
 * presence frame).
 */
export function read(f) {
  const t = f?.type;
  const ch = str(f?.channel);
  const id = uint(f?.id);
  switch (t) {
    case "welcome":
      return [WELCOME, -1, -1, -1, str(f.epoch)];
    case "authenticated":
      return [AUTHENTICATED, id, uint(f.expires_in), -1, str(f.user)];
    case "pong":
      return [PONG, id];
    case "error":
      return [ERROR, id, -1, -1, str(f.code), str(f.message)];
    case "history":
      return [HISTORY_FRAME, id];
  }
  if (ch == null) return [OTHER];
  switch (t) {
    case "event":
    case "notification": {
      // The item (pull request or issue) the data names: `number`, else `pr_number`, else
      // `parent_number` (subscription::item_of in the protocol crate).
      const d = f.data;
      let item = -1;
      for (const k of ["number", "pr_number", "parent_number"]) if ((item = uint(d?.[k])) >= 0) break;
      if (t == "notification") return [NOTIFICATION, -1, uint(f.seq), -1, ch];
      return typeof f.event == "string" ? [EVENT, -1, uint(f.seq), item, ch, f.event] : [OTHER];
    }
    case "subscribed":
      return [SUBSCRIBED, id, uint(f.seq), typeof f.recovered == "boolean" ? +f.recovered : -1, ch];
    case "unsubscribed":
      return [UNSUBSCRIBED, id, -1, -1, ch, str(f.reason)];
    case "signal":
      return [SIGNAL_FRAME, -1, -1, -1, ch];
    case "presence": {
      const members = [];
      if (Array.isArray(f.members)) {
        for (const m of f.members) if (typeof m?.user == "string" && uint(m.connections) >= 0) members.push([m.user, m.connections]);
      }
      return [PRESENCE, id, -1, -1, ch, undefined, members];
    }
    case "join":
    case "leave":
      return typeof f.user == "string" ? [t == "join" ? JOIN : LEAVE, -1, -1, -1, ch, f.user] : [OTHER];
  }
  return [OTHER];
}
