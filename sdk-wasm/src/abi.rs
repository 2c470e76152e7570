//! The wasm's exports: the sans-IO [`Session`] behind a few plain functions, for the driver in
//! JavaScript (`js/core.js`). No imports, no JS values: inputs are numbers and UTF-8 strings in
//! the wasm's memory; outputs are read one at a time as text. Payloads (the frames the
//! application receives) stay in JavaScript: the session carries their ids.
//!
//! | export | what |
//! |---|---|
//! | `alloc(len)`, `free(ptr, len)` | memory for the strings passed in |
//! | `new(seed, auth, base, max, ping, pong, connect)` | a session (durations in ms, negative: the default); its handle |
//! | `drop(c)` | frees it |
//! | `input(c, tag, now, a, p1, n1, p2, n2)` | one input or command ([`OPEN`] … [`HISTORY`]): returns a subscription or request id, or whether a signal was sent; when refused, −1 − the length of the message at `out(c)` |
//! | `member(c, p, n, connections)` | one member of the next [`PRESENCE`] frame's list |
//! | `frame(c, now, kind, id, a, b, p1, n1, p2, n2, payload)` | a server frame's fields ([`WELCOME`] … [`OTHER`]) |
//! | `poll(c)` | the next output, as text at `out(c)`: its length, 0 when there is none |
//! | `position(c, sub)` | a subscription's position, `[seq, "epoch"]` at `out(c)`: its length, 0 when none |
//! | `out(c)` | where that text is |
//! | `timeout(c)` | when to call `input(TIMER)` next, in ms (−1: no timer) |
//!
//! Outputs ([`Session::poll_action`], `poll_transmit`, `poll_event`, in that order): `T` then a
//! frame to send as it is; or a JSON array whose first element says what it is:
//! `["F"]` fetch a token, `["C"]` open a socket, `["X", code, reason]` close it,
//! `["S", state, reason, code, retryIn, attempt]`, `["U", sub, state, recovered, code, message]`,
//! `["M", sub, payload]` an event, `["G", sub, payload]` a signal,
//! `["P", sub, lastSeq, resumeSeq, reason]` a gap, `["E", code, message]` an error,
//! `["L", sub, members]`, `["J", sub, user, joined, members]` (members: `[[user, connections], …]`),
//! `["R", req, payload]` or `["R", req, null, code, message]` a request's answer.
//! Absent values are `null`.

use crate::api::SubscriptionState;
use crate::prelude::*;
use core::time::Duration;
use guts_realtime::session::{
    Action, ConnectionState, Event, Inbound, Session, SessionConfig, SessionError, SubId,
    TokenError,
};
use guts_realtime::{ErrorCode, EventKind, Since};

/// Input: the socket opened.
pub(crate) const OPEN: u32 = 0;
/// Input: the socket closed; `a`: code, `s1`: reason.
pub(crate) const CLOSE: u32 = 1;
/// Input: the timer fired.
pub(crate) const TIMER: u32 = 2;
/// Input: the page; `a`: 1 online, 2 offline, 3 visible again (`pageshow`), 4 `pagehide`.
pub(crate) const PAGE: u32 = 3;
/// Input: the token provider answered; `a`: 0 a token (`s1`, empty: anonymous), 1 failed
/// (retry), 2 refused for good; `s1`: the token, or why.
pub(crate) const TOKEN: u32 = 4;
/// Command: `connect()`.
pub(crate) const CONNECT: u32 = 5;
/// Command: `close()`.
pub(crate) const CLOSE_CLIENT: u32 = 6;
/// Command: subscribe to `s1`, with presence when `a` is 1, from the position `s2` (`SEQ EPOCH`;
/// empty: none). Returns the subscription id.
pub(crate) const SUBSCRIBE: u32 = 7;
/// Command: unsubscribe the subscription `a`.
pub(crate) const UNSUBSCRIBE: u32 = 8;
/// Command: signal on `s1`; `s2`: the event name, a NUL, the data as JSON. Returns 1 when sent.
pub(crate) const SIGNAL: u32 = 9;
/// Command: who is on `s1`. Returns the request id.
pub(crate) const PRESENCE_OF: u32 = 10;
/// Command: the last `a` events of `s1` (negative: the default). Returns the request id.
pub(crate) const HISTORY: u32 = 11;

/// Frame: `welcome`; `s1`: epoch.
pub(crate) const WELCOME: u32 = 0;
/// Frame: `authenticated`; `id`, `s1`: user, `a`: expires_in.
pub(crate) const AUTHENTICATED: u32 = 1;
/// Frame: `subscribed`; `id`, `s1`: channel, `a`: seq, `b`: recovered (1, 0, −1 absent).
pub(crate) const SUBSCRIBED: u32 = 2;
/// Frame: `unsubscribed`; `id`, `s1`: channel, `s2`: reason (empty: none).
pub(crate) const UNSUBSCRIBED: u32 = 3;
/// Frame: `pong`; `id`.
pub(crate) const PONG: u32 = 4;
/// Frame: `error`; `id`, `s1`: code, `s2`: message.
pub(crate) const ERROR: u32 = 5;
/// Frame: `event`; `s1`: channel, `s2`: kind, `a`: seq, `b`: item, `payload`.
pub(crate) const EVENT: u32 = 6;
/// Frame: `notification`; `s1`: channel, `a`: seq, `payload`.
pub(crate) const NOTIFICATION: u32 = 7;
/// Frame: `presence`; `id`, `s1`: channel, `payload` (the members came through `member`).
pub(crate) const PRESENCE: u32 = 8;
/// Frame: `join`; `s1`: channel, `s2`: user.
pub(crate) const JOIN: u32 = 9;
/// Frame: `leave`; `s1`: channel, `s2`: user.
pub(crate) const LEAVE: u32 = 10;
/// Frame: `signal`; `s1`: channel, `payload`.
pub(crate) const SIGNAL_FRAME: u32 = 11;
/// Frame: `history`; `id`, `payload`.
pub(crate) const HISTORY_FRAME: u32 = 12;
/// Frame: anything else (proves the link alive). Named for the driver: [`frame`] reads every
/// kind it does not know as this one.
#[allow(dead_code)]
pub(crate) const OTHER: u32 = 13;

/// One client: its session, the text of its last output, and the members of the presence frame
/// being read.
pub struct Client {
    session: Session<u32>,
    out: String,
    members: Vec<(String, u32)>,
}

/// A duration of `ms` milliseconds (negative: none).
fn ms(ms: f64) -> Option<Duration> {
    (ms >= 0.0).then(|| Duration::from_micros((ms * 1e3) as u64))
}

/// A non-negative number (negative: absent).
fn num(v: f64) -> Option<u64> {
    (v >= 0.0).then_some(v as u64)
}

/// A position written `SEQ EPOCH` (`None` for anything else).
fn since(text: &str) -> Option<Since> {
    let (seq, epoch) = text.split_once(' ')?;
    let mut n: u64 = 0;
    for b in seq.bytes() {
        n = n.checked_mul(10)?.checked_add(u64::from(b.checked_sub(b'0').filter(|d| *d < 10)?))?;
    }
    (!seq.is_empty()).then(|| Since { seq: n, epoch: epoch.to_owned() })
}

/// The string of `n` bytes at `p` (the driver wrote UTF-8 there).
///
/// # Safety
/// `p..p + n` is memory of this module holding UTF-8, for the duration of the call.
unsafe fn text<'a>(p: *const u8, n: usize) -> &'a str {
    if n == 0 {
        return "";
    }
    // SAFETY: the caller's promise.
    unsafe { core::str::from_utf8_unchecked(core::slice::from_raw_parts(p, n)) }
}

/// Memory for `len` bytes (for a string passed in).
#[export_name = "alloc"]
pub extern "C" fn alloc_bytes(len: usize) -> *mut u8 {
    let mut v = Vec::<u8>::with_capacity(len);
    let p = v.as_mut_ptr();
    core::mem::forget(v);
    p
}

/// Frees what [`alloc_bytes`] gave.
///
/// # Safety
/// `p` and `len` are from one call of [`alloc_bytes`].
#[export_name = "free"]
pub unsafe extern "C" fn free_bytes(p: *mut u8, len: usize) {
    // SAFETY: the caller's promise.
    drop(unsafe { Vec::from_raw_parts(p, 0, len) });
}

/// A session: jitter seeded with `seed`, a token asked before each connect when `auth` is 1,
/// and the timings in ms (negative: the default).
#[export_name = "new"]
pub extern "C" fn new_client(
    seed: f64,
    auth: u32,
    base: f64,
    max: f64,
    ping: f64,
    pong: f64,
    connect: f64,
) -> *mut Client {
    let mut cfg = SessionConfig::default().auth(auth == 1).rng_seed(seed as u64);
    if let Some(d) = ms(base) {
        cfg = cfg.backoff_base(d);
    }
    if let Some(d) = ms(max) {
        cfg = cfg.backoff_max(d);
    }
    if let Some(d) = ms(ping) {
        cfg = cfg.ping_interval(d);
    }
    if let Some(d) = ms(pong) {
        cfg = cfg.pong_timeout(d);
    }
    if let Some(d) = ms(connect) {
        cfg = cfg.connect_timeout(d);
    }
    let client = Client { session: Session::new(cfg), out: String::new(), members: Vec::new() };
    Box::into_raw(Box::new(client))
}

/// Frees a session.
///
/// # Safety
/// `c` is from [`new_client`], not used after.
#[export_name = "drop"]
pub unsafe extern "C" fn drop_client(c: *mut Client) {
    // SAFETY: the caller's promise.
    drop(unsafe { Box::from_raw(c) });
}

/// One input or command (the tags above). Returns the id or flag it makes; when the session
/// refuses it, −1 − the length of the refusal's message, which is at [`out`].
///
/// # Safety
/// `c` is from [`new_client`]; the two strings as in [`text`].
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn input(
    c: *mut Client,
    tag: u32,
    now: f64,
    a: f64,
    p1: *const u8,
    n1: usize,
    p2: *const u8,
    n2: usize,
) -> f64 {
    // SAFETY: the caller's promise.
    let (c, s1, s2) = unsafe { (&mut *c, text(p1, n1), text(p2, n2)) };
    let t = ms(now).unwrap_or_default();
    let s = &mut c.session;
    let done: Result<f64, SessionError> = match tag {
        SUBSCRIBE => s.subscribe_with(s1, since(s2), a == 1.0).map(|id| id.0 as f64),
        UNSUBSCRIBE => s.unsubscribe(SubId(a as u64)).map(|()| 1.0),
        SIGNAL => {
            let (event, data) = s2.split_once('\0').unwrap_or((s2, "null"));
            s.signal(s1, event, data).map(|()| 1.0)
        }
        PRESENCE_OF => s.presence(t, s1).map(|r| r.0 as f64),
        HISTORY => s.history(t, s1, num(a).map(|n| n as u32)).map(|r| r.0 as f64),
        _ => {
            match tag {
                OPEN => s.handle_open(t),
                CLOSE => s.handle_close(t, a as u16, s1),
                TIMER => s.handle_timeout(t),
                PAGE => match a as u32 {
                    1 => s.handle_network(t, true),
                    2 => s.handle_network(t, false),
                    3 => s.check_liveness(t),
                    _ => s.release(t, "page hidden"),
                },
                TOKEN => s.handle_token(
                    t,
                    match a as u32 {
                        0 => Ok((!s1.is_empty()).then(|| s1.to_owned())),
                        1 => Err(TokenError::Transient(s1.to_owned())),
                        _ => Err(TokenError::Unauthorized(s1.to_owned())),
                    },
                ),
                CONNECT => s.connect(t),
                CLOSE_CLIENT => s.close(t),
                _ => {}
            }
            Ok(1.0)
        }
    };
    match done {
        Ok(v) => v,
        Err(e) => {
            c.out = e.message();
            -1.0 - c.out.len() as f64
        }
    }
}

/// One member (`connections` connections of the user at `p`) of the next presence frame.
///
/// # Safety
/// `c` is from [`new_client`]; the string as in [`text`].
#[no_mangle]
pub unsafe extern "C" fn member(c: *mut Client, p: *const u8, n: usize, connections: u32) {
    // SAFETY: the caller's promise.
    let (c, user) = unsafe { (&mut *c, text(p, n)) };
    c.members.push((user.to_owned(), connections));
}

/// A server frame's fields (the kinds above); `id`, `a`, `b`: negative when absent.
///
/// # Safety
/// `c` is from [`new_client`]; the two strings as in [`text`].
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn frame(
    c: *mut Client,
    now: f64,
    kind: u32,
    id: f64,
    a: f64,
    b: f64,
    p1: *const u8,
    n1: usize,
    p2: *const u8,
    n2: usize,
    payload: u32,
) {
    // SAFETY: the caller's promise.
    let (c, s1, s2) = unsafe { (&mut *c, text(p1, n1), text(p2, n2)) };
    let (id, one) = (num(id), || s1.to_owned());
    let inbound = match kind {
        WELCOME => Inbound::Welcome { epoch: one() },
        AUTHENTICATED => Inbound::Authenticated { id, user: one(), expires_in: num(a) },
        SUBSCRIBED => {
            let recovered = (b >= 0.0).then_some(b == 1.0);
            Inbound::Subscribed { id, channel: one(), seq: num(a), recovered }
        }
        UNSUBSCRIBED => {
            let reason = (!s2.is_empty()).then(|| s2.to_owned());
            Inbound::Unsubscribed { id, channel: one(), reason }
        }
        PONG => Inbound::Pong { id },
        ERROR => Inbound::Error { id, code: ErrorCode::from_wire(s1), message: s2.to_owned() },
        // A kind this version does not know is an event still: it reaches the channels that
        // take every kind.
        EVENT | NOTIFICATION => Inbound::Event {
            channel: one(),
            kind: if kind == EVENT { EventKind::from_wire(s2) } else { None },
            seq: num(a),
            item: num(b),
            payload,
        },
        PRESENCE => {
            let members = core::mem::take(&mut c.members);
            Inbound::Presence { id, channel: one(), members, payload }
        }
        JOIN => Inbound::Join { channel: one(), user: s2.to_owned() },
        LEAVE => Inbound::Leave { channel: one(), user: s2.to_owned() },
        SIGNAL_FRAME => Inbound::Signal { channel: one(), payload },
        HISTORY_FRAME => Inbound::History { id, payload },
        _ => Inbound::Other,
    };
    c.session.handle_frame(ms(now).unwrap_or_default(), inbound);
}

/// Writes the next output's text (see the module docs); its length, 0 when there is none.
///
/// # Safety
/// `c` is from [`new_client`].
#[no_mangle]
pub unsafe extern "C" fn poll(c: *mut Client) -> usize {
    // SAFETY: the caller's promise.
    let c = unsafe { &mut *c };
    let (s, o) = (&mut c.session, &mut c.out);
    o.clear();
    if let Some(action) = s.poll_action() {
        match action {
            Action::FetchToken => o.push_str("[\"F\""),
            Action::Connect => o.push_str("[\"C\""),
            Action::Close { code, reason } => {
                o.push_str("[\"X\"");
                number(o, Some(code.into()));
                string(o, &reason);
            }
        }
    } else if let Some(text) = s.poll_transmit() {
        o.push('T');
        o.push_str(&text);
        return o.len();
    } else if let Some(event) = s.poll_event() {
        event_text(o, s, event);
    } else {
        return 0;
    }
    o.push(']');
    o.len()
}

/// Where the last output's text (or an input's error message) is.
///
/// # Safety
/// `c` is from [`new_client`].
#[no_mangle]
pub unsafe extern "C" fn out(c: *mut Client) -> *const u8 {
    // SAFETY: the caller's promise.
    unsafe { (*c).out.as_ptr() }
}

/// The position of subscription `sub` (`[seq, "epoch"]` at `out(c)`): its length, 0 when it has
/// none yet (no event and no position given).
///
/// # Safety
/// `c` is from [`new_client`].
#[no_mangle]
pub unsafe extern "C" fn position(c: *mut Client, sub: f64) -> usize {
    // SAFETY: the caller's promise.
    let c = unsafe { &mut *c };
    let s = &c.session;
    let Some((seq, epoch)) = s.channel_of(SubId(sub as u64)).and_then(|ch| s.position(ch)) else {
        return 0;
    };
    c.out.clear();
    c.out.push('[');
    guts_realtime::frame::push_u64(&mut c.out, seq);
    string(&mut c.out, epoch);
    c.out.push(']');
    c.out.len()
}

/// When to call `input(TIMER)` next, in ms on the inputs' clock (−1: no timer).
///
/// # Safety
/// `c` is from [`new_client`].
#[no_mangle]
pub unsafe extern "C" fn timeout(c: *mut Client) -> f64 {
    // SAFETY: the caller's promise.
    let s = unsafe { &(*c).session };
    s.poll_timeout().map_or(-1.0, |d| d.as_micros() as f64 / 1e3)
}

/// `,n` (or `,null`).
fn number(o: &mut String, n: Option<u64>) {
    o.push(',');
    match n {
        Some(n) => guts_realtime::frame::push_u64(o, n),
        None => o.push_str("null"),
    }
}

/// `,"s"` as JSON.
fn string(o: &mut String, s: &str) {
    o.push(',');
    guts_realtime::frame::push_json_str(o, s);
}

/// `,"code"` (or `,null`).
fn code(o: &mut String, c: Option<ErrorCode>) {
    match c {
        Some(c) => string(o, c.as_str()),
        None => o.push_str(",null"),
    }
}

/// `,[[user, connections], …]`: the member list of `sub`'s channel.
fn members(o: &mut String, s: &Session<u32>, sub: SubId) {
    o.push_str(",[");
    let list = s.channel_of(sub).and_then(|ch| s.members(ch)).unwrap_or_default();
    for (i, (user, n)) in list.iter().enumerate() {
        o.push_str(if i == 0 { "[" } else { ",[" });
        guts_realtime::frame::push_json_str(o, user);
        number(o, Some((*n).into()));
        o.push(']');
    }
    o.push(']');
}

/// One event's JSON array, without its closing `]`.
fn event_text(o: &mut String, s: &Session<u32>, event: Event<u32>) {
    let tag = |o: &mut String, t: &str, sub: SubId| {
        o.push_str(t);
        number(o, Some(sub.0));
    };
    match event {
        Event::State { state, reason, code: close } => {
            o.push_str("[\"S\"");
            string(o, state.name());
            string(o, &reason);
            number(o, close.map(u64::from));
            let (retry, attempt) = match state {
                ConnectionState::Reconnecting { attempt, retry_in } => {
                    (Some(retry_in.as_millis() as u64), Some(attempt))
                }
                ConnectionState::Connecting { attempt } => (None, Some(attempt)),
                _ => (None, None),
            };
            number(o, retry);
            number(o, attempt.map(u64::from));
        }
        Event::Subscription { sub, state } => {
            tag(o, "[\"U\"", sub);
            let s = SubscriptionState::new(String::new(), state);
            string(o, s.state.as_str());
            o.push_str(match s.recovered {
                Some(true) => ",true",
                Some(false) => ",false",
                None => ",null",
            });
            code(o, s.code);
            match &s.message {
                Some(m) => string(o, m),
                None => o.push_str(",null"),
            }
        }
        Event::Message { sub, payload, .. } => {
            tag(o, "[\"M\"", sub);
            number(o, Some(payload.into()));
        }
        Event::Signal { sub, payload } => {
            tag(o, "[\"G\"", sub);
            number(o, Some(payload.into()));
        }
        Event::Gap { sub, last_seq, resume_seq, reason } => {
            tag(o, "[\"P\"", sub);
            number(o, last_seq);
            number(o, resume_seq);
            string(o, reason.as_str());
        }
        Event::Error { code: c, message } => {
            o.push_str("[\"E\"");
            code(o, c);
            string(o, &message);
        }
        Event::Presence { sub } => {
            tag(o, "[\"L\"", sub);
            members(o, s, sub);
        }
        Event::Member { sub, user, joined } => {
            tag(o, "[\"J\"", sub);
            string(o, &user);
            o.push_str(if joined { ",true" } else { ",false" });
            members(o, s, sub);
        }
        Event::Reply { req, result } => {
            o.push_str("[\"R\"");
            number(o, Some(req.0));
            match result {
                Ok(payload) => number(o, Some(payload.into())),
                Err(e) => {
                    o.push_str(",null");
                    code(o, e.code);
                    string(o, &e.message);
                }
            }
        }
        Event::Authenticated { .. } => o.push_str("[\"A\""),
    }
}

/// The exact text the client sends for the command `p` (a client frame's JSON), decoded and
/// encoded again with the session's one encoder: the npm package's tests hold it to the wire
/// vectors. Only in the test copy (feature `vectors`).
///
/// # Safety
/// `c` is from [`new_client`]; the string as in [`text`].
#[cfg(feature = "vectors")]
#[no_mangle]
pub unsafe extern "C" fn encode(c: *mut Client, p: *const u8, n: usize) -> usize {
    // SAFETY: the caller's promise.
    let (c, json) = unsafe { (&mut *c, text(p, n)) };
    c.out = match guts_realtime::decode_client_frame(json) {
        // The session never publishes: the test holds the browser client to that.
        Ok(f) if matches!(f.command, guts_realtime::ClientCommand::Publish { .. }) => {
            "not a command this client sends: publish".to_owned()
        }
        Ok(f) => f.encode(),
        Err(e) => e.error,
    };
    c.out.len()
}
