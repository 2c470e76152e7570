// The numbers of the wasm's exports (sdk-wasm/src/abi.rs): the same names and values there and
// here, checked by sdk-wasm/tests/handler_tags.rs. esbuild and terser inline them.

// `input(c, tag, now, a, s1, s2)`: inputs and commands.
export const OPEN = 0; // the socket opened
export const CLOSE = 1; // the socket closed; a: code, s1: reason
export const TIMER = 2; // the timer fired
export const PAGE = 3; // a: 1 online, 2 offline, 3 visible again, 4 pagehide
export const TOKEN = 4; // a: 0 a token (s1; empty: anonymous), 1 failed (retry), 2 refused; s1: why
export const CONNECT = 5; // connect()
export const CLOSE_CLIENT = 6; // close()
export const SUBSCRIBE = 7; // s1: channel, a: 1 with presence; returns the subscription id
export const UNSUBSCRIBE = 8; // a: the subscription id
export const SIGNAL = 9; // s1: channel, s2: event NUL data-as-JSON; returns 1 when sent
export const PRESENCE_OF = 10; // s1: channel; returns the request id
export const HISTORY = 11; // s1: channel, a: limit (−1: default); returns the request id

// `frame(c, now, kind, id, a, b, s1, s2, payload)`: the server frames the session reads.
export const WELCOME = 0; // s1: epoch
export const AUTHENTICATED = 1; // id, s1: user, a: expires_in
export const SUBSCRIBED = 2; // id, s1: channel, a: seq, b: recovered (1, 0, −1 absent)
export const UNSUBSCRIBED = 3; // id, s1: channel, s2: reason
export const PONG = 4; // id
export const ERROR = 5; // id, s1: code, s2: message
export const EVENT = 6; // s1: channel, s2: kind, a: seq, b: item
export const NOTIFICATION = 7; // s1: channel, a: seq
export const PRESENCE = 8; // id, s1: channel (members through `member` first)
export const JOIN = 9; // s1: channel, s2: user
export const LEAVE = 10; // s1: channel, s2: user
export const SIGNAL_FRAME = 11; // s1: channel
export const HISTORY_FRAME = 12; // id
export const OTHER = 13; // anything else: proves the link alive
