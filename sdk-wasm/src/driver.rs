//! The driver: one [`Session`] plus the I/O around it — a `WebSocket`, one timer, the
//! token provider and the page listeners. Every decision (when to connect, what to send, who
//! gets which event, backoff, heartbeat, dedupe, gaps, presence) is the session's; this module
//! only feeds it inputs and carries out its outputs. The application side (the `RealtimeClient`
//! class, its listeners and promises) is `js/bridge.js`: this module reports to it through one
//! function, `emit`.
//!
//! Every input arrives through one JS function per client, the handler `h(tag, a, b)` that
//! `js/bridge.js` wires to the socket, the timer, the token provider's answer, the page and the
//! `RealtimeClient`'s methods:
//!
//! | tag | from | session input |
//! |---|---|---|
//! | [`OPEN`], [`MESSAGE`], [`CLOSE`], [`ERROR`] | the socket | `handle_open`, `handle_frame`, `handle_close` (`error` = 1006) |
//! | [`TIMER`] | `setTimeout` | `handle_timeout` |
//! | [`TOKEN`], [`TOKEN_FAILED`], [`TOKEN_REFUSED`] | the token provider | `handle_token` (a late answer to an abandoned request is dropped) |
//! | [`PAGE`] `online` / `offline` | the window | `handle_network(now, true / false)`: reconnect now / close and wait |
//! | [`PAGE`] `pageshow`, `visibilitychange` → visible | the window, `document` | `check_liveness`: ping at once (timers may have been throttled) or retry now |
//! | [`PAGE`] `pagehide` | the window | `release(now, "page hidden")`: give the socket up (back/forward cache) |
//! | [`START`] | a microtask after the client is made | `connect` |
//! | [`SUBSCRIBE`], [`UNSUBSCRIBE`] | `subscribe()`, a handle's `unsubscribe()` | `subscribe_with`, `unsubscribe` |
//! | [`SIGNAL`], [`REQUEST`] | `signal()`, `presence()`, `history()` | `signal`, `presence`, `history` |
//! | [`CONNECT`], [`CLOSE_CLIENT`] | `connect()`, `close()` | `connect`, `close` |
//!
//! After every input, [`pump`] drains `poll_action`, `poll_transmit` and `poll_event`, then arms
//! the timer for `poll_timeout`. Reports to the application run with no `RefCell` borrowed, so
//! its callbacks may call back into the client; a nested `pump` returns at once and the outer
//! one drains what the callback caused.

use crate::api::{GapReasonName, StateChange, SubscriptionState};
use crate::decode::{self, Keys};
use crate::js;
use alloc::rc::{Rc, Weak};
use alloc::string::String;
use alloc::vec::Vec;
use core::cell::{Cell, RefCell};
use core::time::Duration;
use guts_realtime::session::{
    Action, ConnectionState, Event, ReqId, RequestError, Session, SessionConfig, SubId, SubState,
    TokenError,
};
use guts_realtime::ErrorCode;
use wasm_bindgen::prelude::*;

/// Socket open.
pub(crate) const OPEN: u32 = 0;
/// A message; `a`: the parsed frame (`undefined` when it is not JSON).
pub(crate) const MESSAGE: u32 = 1;
/// Socket closed; `a`: code, `b`: reason.
pub(crate) const CLOSE: u32 = 2;
/// Socket error (the connection failed).
pub(crate) const ERROR: u32 = 3;
/// The timer fired.
pub(crate) const TIMER: u32 = 4;
/// A page event; `a`: 1 online, 2 offline, 3 resumed (visible again, `pageshow`), 4 `pagehide`.
pub(crate) const PAGE: u32 = 5;
/// A token; `a`: generation, `b`: the token (`undefined`: connect anonymously).
pub(crate) const TOKEN: u32 = 6;
/// The token provider failed (retry with backoff); `a`: generation, `b`: why.
pub(crate) const TOKEN_FAILED: u32 = 7;
/// The token provider refused for good (`UnauthorizedError`); `a`: generation, `b`: why.
pub(crate) const TOKEN_REFUSED: u32 = 8;
/// The first connect, on the microtask after the client is made.
pub(crate) const START: u32 = 9;
/// A handle's `unsubscribe()`; `a`: the subscription id.
pub(crate) const UNSUBSCRIBE: u32 = 10;
/// `subscribe`; `a`: channel, `b`: `[record, presence]` (the record is what the reports of the
/// subscription go to). Returns the subscription id.
pub(crate) const SUBSCRIBE: u32 = 11;
/// `connect()`.
pub(crate) const CONNECT: u32 = 12;
/// `close()`.
pub(crate) const CLOSE_CLIENT: u32 = 13;
/// `signal()`; `a`: channel, `b`: `[event, data as JSON]`. Returns whether it was sent (only on
/// a live connection).
pub(crate) const SIGNAL: u32 = 14;
/// `presence()` / `history()`; `a`: `[kind (0 presence, 1 history), channel, limit]`, `b`: the
/// promise's `[resolve, reject]`, settled by a [`REPLY`].
pub(crate) const REQUEST: u32 = 15;
/// The factory's one tag ([`factory`]); `a`: url, `b`: `[options, emit, WebSocket]`. Returns the
/// new client's handler.
pub(crate) const CREATE: u32 = 16;

/// Report: the connection state; `a`: name, `b`: reason, `c`: close code, `d`: `[retryIn ms,
/// attempt]`.
pub(crate) const STATE: u32 = 20;
/// Report to a subscription: its state; `a`: name, `b`: recovered, `c`: error code, `d`: message.
pub(crate) const SUB: u32 = 21;
/// Report to a subscription: an event or notification frame `a`.
pub(crate) const EVENT: u32 = 22;
/// Report to a subscription: a gap; `a`: last seq, `b`: resume seq, `c`: reason.
pub(crate) const GAP: u32 = 23;
/// Report: a hub error that concerns no subscription or request; `a`: code, `b`: message.
pub(crate) const FAILURE: u32 = 24;
/// Report to a subscription: its channel's member list `a` (`[{ user, connections }]`).
pub(crate) const PRESENCE: u32 = 25;
/// Report to a subscription: `a` joined (`b` true) or left; `c`: the member list now.
pub(crate) const MEMBER: u32 = 26;
/// Report to a subscription: a signal frame `a`.
pub(crate) const SIGNALLED: u32 = 27;
/// Report to a request's `[resolve, reject]`: the answer `a`, or the error code `b` and message
/// `c`.
pub(crate) const REPLY: u32 = 28;

/// The session's clock: `performance.now()` as a [`Duration`].
pub(crate) fn now() -> Duration {
    Duration::from_micros((js::perf_now().max(0.0) * 1e3) as u64)
}

/// The JS function type of every handler: `h(tag, a, b)`.
type Handler = dyn Fn(u32, JsValue, JsValue) -> Result<JsValue, JsValue>;

/// Registers the client factory with the bridge (at the wasm's start): `h0(CREATE, url,
/// [options, emit, WebSocket])` makes a client and returns its handler.
pub(crate) fn factory() {
    let f = Closure::<Handler>::new(|tag, url, b| match tag {
        CREATE => Ok(create(url, &b)),
        _ => Ok(JsValue::UNDEFINED),
    });
    js::register(&f.into_js_value());
}

/// A client for `url` with the bridge's checked `[options, emit, WebSocket]`; its handler.
fn create(url: JsValue, b: &JsValue) -> JsValue {
    let at = |v: &JsValue, i: u32| js::get(v, &JsValue::from(i));
    let opts = at(b, 0);
    let ms = |i: u32| {
        let ms = at(&opts, i).as_f64().unwrap_or(f64::NAN);
        // NaN (absent) fails the comparison.
        (ms >= 0.0).then(|| Duration::from_micros((ms * 1e3) as u64))
    };
    let token = at(&opts, 0);
    let token = token.is_function().then_some(token);
    let mut cfg = SessionConfig::default().auth(token.is_some());
    if let Some(d) = ms(1) {
        cfg = cfg.backoff_base(d);
    }
    if let Some(d) = ms(2) {
        cfg = cfg.backoff_max(d);
    }
    if let Some(d) = ms(3) {
        cfg = cfg.ping_interval(d);
    }
    if let Some(d) = ms(4) {
        cfg = cfg.pong_timeout(d);
    }
    if let Some(d) = ms(5) {
        cfg = cfg.connect_timeout(d);
    }
    // Jitter must differ between clients: seed from Math.random (53 bits, twice).
    let seed = ((js::random() * 9_007_199_254_740_992.0) as u64) << 11
        ^ (js::random() * 9_007_199_254_740_992.0) as u64;
    let inner = Inner::new(url, Session::new(cfg.rng_seed(seed)), token, at(b, 1), at(b, 2));
    inner.start();
    let h = inner.io.borrow().handler.clone();
    h
}

/// What the driver holds besides the session.
pub(crate) struct Io {
    ws: Option<JsValue>,
    /// The one JS → driver callback of this client, `h(tag, a, b)`.
    pub(crate) handler: JsValue,
    /// The armed `setTimeout` and the session deadline (ms, `performance.now()` scale) it fires
    /// for.
    timer: Option<(f64, JsValue)>,
    /// Removes the page listeners (`undefined` where there are none).
    unlisten: JsValue,
    /// Bumped at each token request, so a late answer to an abandoned one is ignored.
    token_gen: u32,
    /// The client itself, from `start` until `shutdown`: a client keeps running (and reporting
    /// to the application) until `close()`, even when the application drops its last
    /// reference, as a `WebSocket` does.
    alive: Option<Rc<Inner>>,
    /// Each subscription's record (where its reports go), by id; ids only grow, so `push` keeps
    /// the order.
    subs: Vec<(SubId, JsValue)>,
    /// Each request waiting for its answer, with its promise's `[resolve, reject]`.
    requests: Vec<(SubId, JsValue)>,
}

impl Io {
    fn clear_timer(&mut self) {
        if let Some((_, handle)) = self.timer.take() {
            js::clear_timeout(&handle);
        }
    }

    /// The record of subscription `sub` in `list`, taken out with `take`.
    fn find(list: &mut Vec<(SubId, JsValue)>, sub: SubId, take: bool) -> Option<JsValue> {
        let i = list.binary_search_by_key(&sub, |(s, _)| *s).ok()?;
        Some(if take { list.remove(i).1 } else { list[i].1.clone() })
    }
}

/// One client: the session and its I/O.
pub(crate) struct Inner {
    pub(crate) session: RefCell<Session<JsValue>>,
    pub(crate) io: RefCell<Io>,
    url: JsValue,
    token: Option<JsValue>,
    /// The bridge's report function of this client's `RealtimeClient`.
    emit: JsValue,
    /// The `WebSocket` constructor (the global one, or the `WebSocket` option).
    socket: JsValue,
    keys: Keys,
    pumping: Cell<bool>,
    closed: Cell<bool>,
}

impl Inner {
    /// A client that has not started; [`Inner::start`] connects.
    fn new(
        url: JsValue,
        session: Session<JsValue>,
        token: Option<JsValue>,
        emit: JsValue,
        socket: JsValue,
    ) -> Rc<Self> {
        Rc::new_cyclic(|weak: &Weak<Inner>| {
            let weak = weak.clone();
            // Owned by JS (freed when the last JS reference goes), so a microtask or promise
            // still pending when the client is closed or freed finds a function to call; it
            // holds the client weakly and does nothing once the client is closed or gone. `Fn`,
            // not `FnMut`: an application callback runs inside it and may call the client's
            // methods, which are calls of this same function (wasm-bindgen refuses re-entry
            // into an `FnMut`).
            let handler = Closure::<Handler>::new(move |tag, a: JsValue, b| call(&weak, tag, a, b))
                .into_js_value();
            let unlisten = js::page(&handler);
            Inner {
                session: RefCell::new(session),
                io: RefCell::new(Io {
                    ws: None,
                    handler,
                    timer: None,
                    unlisten,
                    token_gen: 0,
                    alive: None,
                    subs: Vec::new(),
                    requests: Vec::new(),
                }),
                url,
                token,
                emit,
                socket,
                keys: Keys::new(),
                pumping: Cell::new(false),
                closed: Cell::new(false),
            }
        })
    }

    /// Connects on the next microtask, so listeners registered right after the client was made
    /// see the first `connecting` state.
    fn start(self: &Rc<Self>) {
        let mut io = self.io.borrow_mut();
        io.alive = Some(self.clone());
        js::soon(&io.handler);
    }

    /// One report to the application: `kind` to `target`.
    fn report(&self, kind: u32, target: &JsValue, a: JsValue, b: JsValue, c: JsValue, d: JsValue) {
        js::emit(&self.emit, kind, target, &a, &b, &c, &d);
    }

    /// One input from the socket, the timer, the page or the token provider (the module's table).
    fn on(&self, tag: u32, a: JsValue, b: JsValue) {
        let t = now();
        match tag {
            OPEN => self.session.borrow_mut().handle_open(t),
            MESSAGE => {
                let frame = decode::read(&self.keys, a);
                self.session.borrow_mut().handle_frame(t, frame);
            }
            CLOSE | ERROR => {
                if let Some(ws) = self.io.borrow_mut().ws.take() {
                    // `error` means the connection failed (1006). Browsers follow it with
                    // `close`, but Node 20 does not when the connection is refused: it is
                    // reported once, here, and the socket is detached so its `close` is not.
                    js::shut(&ws, 0, "");
                }
                let (code, reason) = match tag {
                    CLOSE => (a.as_f64().unwrap_or(1006.0) as u16, b.as_string()),
                    _ => (1006, None),
                };
                let reason = reason.as_deref().unwrap_or("connection failed");
                self.session.borrow_mut().handle_close(t, code, reason);
            }
            TIMER => {
                self.io.borrow_mut().timer = None;
                self.session.borrow_mut().handle_timeout(t);
            }
            PAGE => {
                let mut s = self.session.borrow_mut();
                match a.as_f64().unwrap_or(0.0) as u32 {
                    1 => s.handle_network(t, true),
                    2 => s.handle_network(t, false),
                    3 => s.check_liveness(t),
                    4 => s.release(t, "page hidden"),
                    _ => {}
                }
            }
            START | CONNECT => self.session.borrow_mut().connect(t),
            TOKEN | TOKEN_FAILED | TOKEN_REFUSED => {
                let gen = a.as_f64().unwrap_or(-1.0);
                if f64::from(self.io.borrow().token_gen) != gen {
                    return;
                }
                let text = b.as_string();
                let result = match tag {
                    TOKEN => Ok(text),
                    TOKEN_FAILED => Err(TokenError::Transient(text.unwrap_or_default())),
                    _ => Err(TokenError::Unauthorized(text.unwrap_or_default())),
                };
                self.session.borrow_mut().handle_token(t, result);
            }
            _ => {}
        }
    }

    /// Releases every resource once closed (at the end of the `pump` that delivered `closed`):
    /// socket handlers, the timer, page listeners and the application's records.
    fn shutdown(&self) {
        let mut io = self.io.borrow_mut();
        if let Some(ws) = io.ws.take() {
            js::shut(&ws, 1000, "client closed");
        }
        io.clear_timer();
        let unlisten = core::mem::replace(&mut io.unlisten, JsValue::UNDEFINED);
        js::run(&unlisten);
        io.token_gen = io.token_gen.wrapping_add(1);
        let (subs, requests) = (core::mem::take(&mut io.subs), core::mem::take(&mut io.requests));
        // The caller holds a strong reference of its own: dropping this one frees nothing yet.
        let alive = io.alive.take();
        drop(io);
        drop((subs, requests, alive));
    }

    fn perform(&self, action: Action) {
        match action {
            Action::FetchToken => match &self.token {
                None => self.session.borrow_mut().handle_token(now(), Ok(None)),
                Some(provider) => {
                    let (h, gen) = {
                        let mut io = self.io.borrow_mut();
                        io.token_gen = io.token_gen.wrapping_add(1);
                        (io.handler.clone(), io.token_gen)
                    };
                    // The provider runs now, with nothing borrowed: it may call into the client.
                    js::token(provider, &h, gen);
                }
            },
            Action::Connect => {
                let h = self.io.borrow().handler.clone();
                match js::open(&h, &self.url, &self.socket) {
                    Ok(ws) => {
                        if let Some(old) = self.io.borrow_mut().ws.replace(ws) {
                            js::shut(&old, 0, "");
                        }
                    }
                    Err(e) => {
                        let why = js::text(&e).as_string().unwrap_or_default();
                        self.session.borrow_mut().handle_close(now(), 1006, &why);
                    }
                }
            }
            Action::Close { code, reason } => {
                if let Some(ws) = self.io.borrow_mut().ws.take() {
                    // Browsers only accept 1000 and 3000–4999 from scripts.
                    let code =
                        if code == 1000 || (3000..5000).contains(&code) { code } else { 1000 };
                    js::shut(&ws, code, &reason);
                }
            }
        }
    }

    fn send(&self, text: &str) {
        if let Some(ws) = &self.io.borrow().ws {
            js::send(ws, text);
        }
    }

    /// Arms the timer for the session's next deadline. A timer already armed for an earlier
    /// moment is kept: firing early is harmless (the session compares deadlines with `now`) and
    /// re-arms, so the steady stream of frames that pushes the heartbeat deadline back costs no
    /// timer churn.
    fn arm_timer(&self) {
        let deadline = self.session.borrow().poll_timeout();
        let mut io = self.io.borrow_mut();
        let Some(deadline) = deadline else {
            io.clear_timer();
            return;
        };
        let at = deadline.as_secs_f64() * 1e3;
        if matches!(io.timer, Some((armed, _)) if armed <= at) {
            return;
        }
        io.clear_timer();
        // Rounded up (`f64::ceil` is std-only), so the timer never fires before the deadline.
        let delay = (at - js::perf_now()).clamp(0.0, 2_000_000_000.0);
        let whole = delay as u32 as f64;
        let delay = if whole < delay { whole + 1.0 } else { whole };
        let handle = js::timer(&io.handler, delay);
        io.timer = Some((at, handle));
    }

    /// The member list of `sub`'s channel, as `[{ user, connections }]`.
    fn members(&self, sub: SubId) -> JsValue {
        let s = self.session.borrow();
        let list = js::list();
        for (user, n) in s.channel_of(sub).and_then(|ch| s.members(ch)).unwrap_or_default() {
            js::member(&list, user, *n);
        }
        list
    }

    /// Reports one session event to the application.
    fn dispatch(&self, event: Event<JsValue>) {
        // After close() (possibly called from a callback earlier in this batch) only the final
        // `closed` state is still reported.
        if self.closed.get()
            && !matches!(&event, Event::State { state: ConnectionState::Closed, .. })
        {
            return;
        }
        let no = || JsValue::UNDEFINED;
        let num = |n: Option<u64>| n.map_or(JsValue::UNDEFINED, |n| JsValue::from_f64(n as f64));
        let code = |c: Option<ErrorCode>| c.map_or(JsValue::UNDEFINED, |c| c.as_str().into());
        let record = |sub: SubId, take: bool| Io::find(&mut self.io.borrow_mut().subs, sub, take);
        match event {
            Event::Message { sub, payload, .. } => {
                if let Some(r) = record(sub, false) {
                    self.report(EVENT, &r, payload, no(), no(), no());
                }
            }
            Event::Signal { sub, payload } => {
                if let Some(r) = record(sub, false) {
                    self.report(SIGNALLED, &r, payload, no(), no(), no());
                }
            }
            Event::State { state, reason, code: close } => {
                let c = StateChange::new(&state, reason, close);
                let detail = match (c.retry_in, c.attempt) {
                    (None, None) => no(),
                    (retry, attempt) => js::pair(
                        &retry.map_or(no(), JsValue::from_f64),
                        &attempt.map_or(no(), JsValue::from),
                    ),
                };
                let close = c.code.map_or(no(), JsValue::from);
                let (name, reason) = (c.state.as_str(), c.reason.as_str());
                self.report(STATE, &no(), name.into(), reason.into(), close, detail);
            }
            Event::Subscription { sub, state, .. } => {
                let gone = state == SubState::Unsubscribed;
                let Some(r) = record(sub, gone) else { return };
                let s = SubscriptionState::new(String::new(), state);
                let recovered = s.recovered.map_or(no(), JsValue::from_bool);
                let message = s.message.as_deref().map_or(no(), JsValue::from_str);
                self.report(SUB, &r, s.state.as_str().into(), recovered, code(s.code), message);
            }
            Event::Gap { sub, last_seq, resume_seq, reason, .. } => {
                if let Some(r) = record(sub, false) {
                    let reason = GapReasonName::from(reason).as_str();
                    self.report(GAP, &r, num(last_seq), num(resume_seq), reason.into(), no());
                }
            }
            Event::Error { code: c, message } => {
                self.report(FAILURE, &no(), code(c), message.as_str().into(), no(), no());
            }
            Event::Presence { sub } => {
                if let Some(r) = record(sub, false) {
                    self.report(PRESENCE, &r, self.members(sub), no(), no(), no());
                }
            }
            Event::Member { sub, user, joined } => {
                if let Some(r) = record(sub, false) {
                    let list = self.members(sub);
                    self.report(MEMBER, &r, user.as_str().into(), joined.into(), list, no());
                }
            }
            Event::Reply { req, result } => {
                let pr = Io::find(&mut self.io.borrow_mut().requests, SubId(req.0), true);
                if let Some(pr) = pr {
                    match result {
                        Ok(frame) => self.report(REPLY, &pr, frame, no(), no(), no()),
                        Err(RequestError { code: c, message }) => {
                            self.report(REPLY, &pr, no(), code(c), message.as_str().into(), no())
                        }
                    }
                }
            }
            Event::Authenticated { .. } => {}
        }
    }
}

/// One call of a client's handler (see the module's table).
fn call(weak: &Weak<Inner>, tag: u32, a: JsValue, b: JsValue) -> Result<JsValue, JsValue> {
    let Some(inner) = weak.upgrade() else {
        // Closed and released.
        return match tag {
            SUBSCRIBE | REQUEST => Err(crate::js_error("client closed")),
            _ => Ok(JsValue::UNDEFINED),
        };
    };
    if inner.closed.get() && matches!(tag, SUBSCRIBE | REQUEST) {
        return Err(crate::js_error("client closed"));
    }
    let at = |v: &JsValue, i: u32| js::get(v, &JsValue::from(i));
    let mut result = JsValue::UNDEFINED;
    match tag {
        SUBSCRIBE => {
            let channel = a.as_string().unwrap_or_default();
            let presence = at(&b, 1).is_truthy();
            let sub = inner.session.borrow_mut().subscribe_with(&channel, None, presence);
            let sub = sub.map_err(|e| crate::js_error(&e.message()))?;
            inner.io.borrow_mut().subs.push((sub, at(&b, 0)));
            result = JsValue::from_f64(sub.0 as f64);
        }
        UNSUBSCRIBE => {
            let sub = SubId(a.as_f64().unwrap_or(0.0) as u64);
            let _ = inner.session.borrow_mut().unsubscribe(sub);
        }
        SIGNAL => {
            let sent = inner.session.borrow_mut().signal(
                &a.as_string().unwrap_or_default(),
                &at(&b, 0).as_string().unwrap_or_default(),
                &at(&b, 1).as_string().unwrap_or_default(),
            );
            result = sent.is_ok().into();
        }
        REQUEST => {
            let channel = at(&a, 1).as_string().unwrap_or_default();
            let req = match at(&a, 0).as_f64() {
                Some(0.0) => inner.session.borrow_mut().presence(now(), &channel),
                _ => {
                    let limit = at(&a, 2).as_f64().map(|n| n as u32);
                    inner.session.borrow_mut().history(now(), &channel, limit)
                }
            };
            let ReqId(req) = req.map_err(|e| crate::js_error(&e.message()))?;
            inner.io.borrow_mut().requests.push((SubId(req), b));
        }
        CLOSE_CLIENT => {
            inner.closed.set(true);
            inner.session.borrow_mut().close(now());
        }
        _ => inner.on(tag, a, b),
    }
    pump(&inner);
    Ok(result)
}

/// Runs the session's outputs to quiescence, then arms the timer.
pub(crate) fn pump(inner: &Rc<Inner>) {
    if inner.pumping.replace(true) {
        return; // called from a callback inside an outer pump, which drains what follows
    }
    // Each output is taken with the session borrowed only for the `poll_*` call itself: what
    // the driver or a callback feeds back in lands in the same queues and is drained here.
    loop {
        let mut idle = true;
        loop {
            let action = inner.session.borrow_mut().poll_action();
            let Some(action) = action else { break };
            idle = false;
            inner.perform(action);
        }
        loop {
            let text = inner.session.borrow_mut().poll_transmit();
            let Some(text) = text else { break };
            idle = false;
            inner.send(&text);
        }
        loop {
            let event = inner.session.borrow_mut().poll_event();
            let Some(event) = event else { break };
            idle = false;
            inner.dispatch(event);
        }
        if idle {
            break;
        }
    }
    if inner.closed.get() {
        inner.shutdown();
    } else {
        inner.arm_timer();
    }
    inner.pumping.set(false);
}
