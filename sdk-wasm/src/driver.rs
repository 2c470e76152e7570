//! The driver: one [`Session`] plus the I/O around it — a `WebSocket`, one timer, the
//! token provider and the page listeners. Every decision (when to connect, what to send, who
//! gets which event, backoff, heartbeat, dedupe, gaps) is the session's; this module only feeds
//! it inputs and carries out its outputs.
//!
//! Every input arrives through one JS function per client, the handler `h(tag, a, b)` that
//! `js/bridge.js` wires to the socket, the timer, the token provider's answer and the page:
//!
//! | tag | from | session input |
//! |---|---|---|
//! | [`OPEN`], [`MESSAGE`], [`CLOSE`], [`ERROR`] | the socket | `handle_open`, `handle_frame`, `handle_close` (`error` = 1006) |
//! | [`TIMER`] | `setTimeout` | `handle_timeout` |
//! | [`TOKEN`], [`TOKEN_FAILED`], [`TOKEN_REFUSED`] | the token provider | `handle_token` (a late answer to an abandoned request is dropped) |
//! | [`PAGE`] `online` / `offline` | the window | `handle_network(now, true / false)`: reconnect now / close and wait |
//! | [`PAGE`] `pageshow`, `visibilitychange` → visible | the window, `document` | `check_liveness`: ping at once (timers may have been throttled) or retry now |
//! | [`PAGE`] `pagehide` | the window | `release(now, "page hidden")`: give the socket up (back/forward cache) |
//! | [`START`] | a microtask after the constructor | `connect` |
//! | [`UNSUBSCRIBE`], [`SUB_STATE`], [`MEMBERS`] | a `SubscriptionHandle` | `unsubscribe`, `sub_state`, `members` |
//! | [`SIGNAL`], [`REQUEST`] | `RealtimeClient.signal`, `.presence`, `.history` | `signal`, `presence`, `history` |
//!
//! After every input, [`pump`] drains `poll_action`, `poll_transmit` and `poll_event`, then arms
//! the timer for `poll_timeout`. Application callbacks run with no `RefCell` borrowed, so they
//! may call back into the client; a nested `pump` returns at once and the outer one drains what
//! the callback caused.

use crate::api::{ErrorInfo, Gap, StateChange, SubscriptionState};
use crate::decode::{self, Keys};
use crate::js::{self, WebSocket};
use alloc::rc::{Rc, Weak};
use alloc::string::String;
use alloc::vec::Vec;
use core::cell::{Cell, RefCell};
use core::time::Duration;
use guts_realtime::session::{
    Action, ConnectionState, Event, ReqId, RequestError, Session, SubId, TokenError,
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
/// The first connect, on the microtask after the constructor.
pub(crate) const START: u32 = 9;
/// `SubscriptionHandle.unsubscribe()`; `a`: the handle id.
pub(crate) const UNSUBSCRIBE: u32 = 10;
/// `SubscriptionHandle.state`; `a`: the handle id. Returns the state name.
pub(crate) const SUB_STATE: u32 = 11;
/// `RealtimeClient.subscribe`; `a`: channel, `b`: the checked callbacks (`js::handlers`).
/// Returns the handle id.
pub(crate) const SUBSCRIBE: u32 = 12;
/// `RealtimeClient.onState`; `a`: listener.
pub(crate) const ON_STATE: u32 = 13;
/// `RealtimeClient.onError`; `a`: listener.
pub(crate) const ON_ERROR: u32 = 14;
/// `RealtimeClient.state`: returns the state name.
pub(crate) const STATE: u32 = 15;
/// `RealtimeClient.connect()`.
pub(crate) const CONNECT: u32 = 16;
/// `RealtimeClient.close()`.
pub(crate) const CLOSE_CLIENT: u32 = 17;
/// `RealtimeClient.signal`; `a`: channel, `b`: `[event, data as JSON]`. Returns whether it was
/// sent (only on a live connection).
pub(crate) const SIGNAL: u32 = 18;
/// `RealtimeClient.presence` / `.history`; `a`: `[kind (0 presence, 1 history), channel,
/// limit]`, `b`: the promise's `[resolve, reject]`, settled by the answer.
pub(crate) const REQUEST: u32 = 19;
/// `SubscriptionHandle.members`; `a`: the handle id. Returns the member list.
pub(crate) const MEMBERS: u32 = 20;

/// The session's clock: `performance.now()` as a [`Duration`].
pub(crate) fn now() -> Duration {
    Duration::from_micros((js::perf_now().max(0.0) * 1e3) as u64)
}

/// Application listeners.
pub(crate) struct Callbacks {
    /// Connection-state listeners (a JS array the bridge iterates).
    pub(crate) state: JsValue,
    /// Error listeners (a JS array).
    pub(crate) error: JsValue,
    /// Each subscription handle's callbacks object (`js::handlers`), sorted by handle (handles
    /// only grow, so `push` keeps the order).
    subs: Vec<(SubId, JsValue)>,
    /// Each request waiting for its answer, with its promise's `[resolve, reject]`.
    requests: Vec<(ReqId, JsValue)>,
}

impl Callbacks {
    fn new() -> Callbacks {
        Callbacks { state: js::list(), error: js::list(), subs: Vec::new(), requests: Vec::new() }
    }

    pub(crate) fn add_sub(&mut self, sub: SubId, handlers: JsValue) {
        self.subs.push((sub, handlers));
    }

    pub(crate) fn remove_sub(&mut self, sub: SubId) {
        if let Ok(i) = self.subs.binary_search_by_key(&sub, |(s, _)| *s) {
            self.subs.remove(i);
        }
    }

    fn sub(&self, sub: SubId) -> Option<JsValue> {
        let i = self.subs.binary_search_by_key(&sub, |(s, _)| *s).ok()?;
        Some(self.subs[i].1.clone())
    }
}

/// What the driver holds besides the session.
pub(crate) struct Io {
    ws: Option<WebSocket>,
    /// The one JS → driver callback of this client, `h(tag, a, b)`.
    pub(crate) handler: JsValue,
    /// The armed `setTimeout` and the session deadline (ms, `performance.now()` scale) it fires
    /// for.
    timer: Option<(f64, JsValue)>,
    /// Removes the page listeners (`undefined` where there are none).
    unlisten: JsValue,
    /// Bumped at each token request, so a late answer to an abandoned one is ignored.
    token_gen: u32,
    /// The client itself, from `start` until `shutdown`: a client keeps running (and calling its
    /// callbacks) until `close()`, even when the application drops its last reference, as a
    /// `WebSocket` does.
    alive: Option<Rc<Inner>>,
}

impl Io {
    fn clear_timer(&mut self) {
        if let Some((_, handle)) = self.timer.take() {
            js::clear_timeout(&handle);
        }
    }
}

/// One client: the session, its I/O and its listeners.
pub(crate) struct Inner {
    pub(crate) session: RefCell<Session<JsValue>>,
    pub(crate) callbacks: RefCell<Callbacks>,
    pub(crate) io: RefCell<Io>,
    url: JsValue,
    token: Option<JsValue>,
    keys: Keys,
    pumping: Cell<bool>,
    pub(crate) closed: Cell<bool>,
}

impl Inner {
    /// A client that has not started; [`Inner::start`] connects.
    pub(crate) fn new(url: JsValue, session: Session<JsValue>, token: Option<JsValue>) -> Rc<Self> {
        Rc::new_cyclic(|weak: &Weak<Inner>| {
            let weak = weak.clone();
            // Owned by JS (freed when the last JS reference goes), so a microtask or promise
            // still pending when the client is closed or freed finds a function to call; it
            // holds the client weakly and does nothing once the client is closed or gone. `Fn`,
            // not `FnMut`: an application callback runs inside it and may call the client's
            // methods, which are calls of this same function (wasm-bindgen refuses re-entry
            // into an `FnMut`).
            let handler =
                Closure::<dyn Fn(u32, JsValue, JsValue) -> Result<JsValue, JsValue>>::new(
                    move |tag, a: JsValue, b| call(&weak, tag, a, b),
                )
                .into_js_value();
            let unlisten = js::page(&handler);
            Inner {
                session: RefCell::new(session),
                callbacks: RefCell::new(Callbacks::new()),
                io: RefCell::new(Io {
                    ws: None,
                    handler,
                    timer: None,
                    unlisten,
                    token_gen: 0,
                    alive: None,
                }),
                url,
                token,
                keys: Keys::new(),
                pumping: Cell::new(false),
                closed: Cell::new(false),
            }
        })
    }

    /// Connects on the next microtask, so listeners registered right after the constructor see
    /// the first `connecting` state.
    pub(crate) fn start(self: &Rc<Self>) {
        let mut io = self.io.borrow_mut();
        io.alive = Some(self.clone());
        js::soon(&io.handler);
    }

    /// The state name of a handle.
    fn sub_state(&self, sub: SubId) -> JsValue {
        let state = self.session.borrow().sub_state(sub);
        let name = match state {
            Some(s) => SubscriptionState::new(String::new(), s).state.as_str(),
            None => "unsubscribed",
        };
        name.into()
    }

    /// One input from JS (see the module's table).
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
                    js::wire(&ws, &JsValue::NULL);
                    if tag == ERROR {
                        let _ = ws.close();
                    }
                }
                // `error` means the connection failed (1006). Browsers follow it with `close`,
                // but Node 20 does not when the connection is refused: it is reported once,
                // here, and the socket is detached so its `close` is not.
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
            START => self.session.borrow_mut().connect(t),
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
    /// socket handlers, the timer, page listeners and application callbacks.
    fn shutdown(&self) {
        let mut io = self.io.borrow_mut();
        if let Some(ws) = io.ws.take() {
            js::wire(&ws, &JsValue::NULL);
            let _ = ws.close_with(1000, "client closed");
        }
        io.clear_timer();
        let unlisten = core::mem::replace(&mut io.unlisten, JsValue::UNDEFINED);
        js::run(&unlisten);
        io.token_gen = io.token_gen.wrapping_add(1);
        // The caller holds a strong reference of its own: dropping this one frees nothing yet.
        let alive = io.alive.take();
        drop(io);
        let taken = core::mem::replace(&mut *self.callbacks.borrow_mut(), Callbacks::new());
        drop(taken);
        drop(alive);
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
            Action::Connect => match WebSocket::new(&self.url) {
                Ok(ws) => {
                    let mut io = self.io.borrow_mut();
                    js::wire(&ws, &io.handler);
                    if let Some(old) = io.ws.replace(ws) {
                        js::wire(&old, &JsValue::NULL);
                        let _ = old.close();
                    }
                }
                Err(e) => {
                    let why = js::text(&e).as_string().unwrap_or_default();
                    self.session.borrow_mut().handle_close(now(), 1006, &why);
                }
            },
            Action::Close { code, reason } => {
                if let Some(ws) = self.io.borrow_mut().ws.take() {
                    js::wire(&ws, &JsValue::NULL);
                    // Browsers only accept 1000 and 3000–4999 from scripts.
                    let code =
                        if code == 1000 || (3000..5000).contains(&code) { code } else { 1000 };
                    let _ = ws.close_with(code, &reason);
                }
            }
        }
    }

    fn send(&self, text: &str) {
        if let Some(ws) = &self.io.borrow().ws {
            if ws.ready_state() == js::OPEN {
                let _ = ws.send(text);
            }
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

    fn dispatch(&self, event: Event<JsValue>) {
        // After close() (possibly called from a callback earlier in this batch) only the final
        // `closed` state is still delivered.
        if self.closed.get()
            && !matches!(&event, Event::State { state: ConnectionState::Closed, .. })
        {
            return;
        }
        let subs = |sub: SubId| self.callbacks.borrow().sub(sub);
        match event {
            Event::Message { sub, payload, .. } => {
                if let Some(h) = subs(sub) {
                    js::event(&h, &payload);
                }
            }
            Event::State { state, reason, code } => {
                let listeners = self.callbacks.borrow().state.clone();
                let c = StateChange::new(&state, reason, code);
                js::state(&listeners, c.state.as_str(), &c.reason, c.code, c.retry_in, c.attempt);
            }
            Event::Subscription { sub, channel, state } => {
                if let Some(h) = subs(sub) {
                    let s = SubscriptionState::new(channel, state);
                    let (code, message) = (s.code.map(ErrorCode::as_str), s.message.as_deref());
                    js::sub(&h, &s.channel, s.state.as_str(), s.recovered, code, message);
                }
            }
            Event::Gap { sub, channel, last_seq, resume_seq, reason } => {
                if let Some(h) = subs(sub) {
                    let g = Gap { channel, last_seq, resume_seq, reason: reason.into() };
                    let seq = |s: Option<u64>| s.map(|s| s as f64);
                    js::gap(&h, &g.channel, seq(g.last_seq), seq(g.resume_seq), g.reason.as_str());
                }
            }
            Event::Error { code, message } => {
                let listeners = self.callbacks.borrow().error.clone();
                let e = ErrorInfo { code, message };
                js::error(&listeners, e.code.map(ErrorCode::as_str), &e.message);
            }
            Event::Authenticated { .. } => {}
            Event::Presence { sub } => {
                if let Some(h) = subs(sub) {
                    let s = self.session.borrow();
                    let members = s.channel_of(sub).and_then(|ch| s.members(ch));
                    let list = member_list(members.unwrap_or_default());
                    drop(s);
                    js::presence(&h, &list);
                }
            }
            Event::Member { sub, user, joined } => {
                if let Some(h) = subs(sub) {
                    js::join(&h, &user, joined);
                }
            }
            Event::Signal { sub, payload } => {
                if let Some(h) = subs(sub) {
                    js::signal(&h, &payload);
                }
            }
            Event::Reply { req, result } => {
                let pr = {
                    let mut cb = self.callbacks.borrow_mut();
                    let i = cb.requests.iter().position(|(r, _)| *r == req);
                    i.map(|i| cb.requests.remove(i).1)
                };
                if let Some(pr) = pr {
                    match result {
                        Ok(frame) => js::settle(&pr, &frame, None, None),
                        Err(RequestError { code, message }) => js::settle(
                            &pr,
                            &JsValue::UNDEFINED,
                            code.map(ErrorCode::as_str),
                            Some(&message),
                        ),
                    }
                }
            }
        }
    }
}

/// The member list as JS objects `{ user, connections }`.
fn member_list(members: &[(String, u32)]) -> JsValue {
    let list = js::list();
    for (user, n) in members {
        js::member(&list, user, *n);
    }
    list
}

/// One call of a client's handler (see the module's table).
fn call(weak: &Weak<Inner>, tag: u32, a: JsValue, b: JsValue) -> Result<JsValue, JsValue> {
    let Some(inner) = weak.upgrade() else {
        // Closed and released.
        return match tag {
            STATE => Ok("closed".into()),
            SUB_STATE => Ok("unsubscribed".into()),
            SUBSCRIBE | REQUEST => Err(crate::js_error("client closed")),
            _ => Ok(JsValue::UNDEFINED),
        };
    };
    let sub = SubId(a.as_f64().unwrap_or(0.0) as u64);
    match tag {
        SUB_STATE => return Ok(inner.sub_state(sub)),
        STATE => {
            let s = inner.session.borrow();
            return Ok(StateChange::new(s.state(), String::new(), None).state.as_str().into());
        }
        UNSUBSCRIBE => {
            if inner.session.borrow_mut().unsubscribe(sub).is_ok() {
                pump(&inner);
            }
            inner.callbacks.borrow_mut().remove_sub(sub);
        }
        MEMBERS => {
            let s = inner.session.borrow();
            let members = s.channel_of(sub).and_then(|ch| s.members(ch)).unwrap_or_default();
            return Ok(member_list(members));
        }
        _ if inner.closed.get() => {
            if tag == SUBSCRIBE || tag == REQUEST {
                return Err(crate::js_error("client closed"));
            }
        }
        SUBSCRIBE => {
            let channel = a.as_string().unwrap_or_default();
            let presence = js::get(&b, &JsValue::from_str("p")).is_truthy();
            let sub = inner.session.borrow_mut().subscribe_with(&channel, None, presence);
            let sub = sub.map_err(|e| crate::js_error(&e.message()))?;
            inner.callbacks.borrow_mut().add_sub(sub, b);
            pump(&inner);
            return Ok(JsValue::from_f64(sub.0 as f64));
        }
        ON_STATE => {
            js::add(&inner.callbacks.borrow().state, &a);
        }
        ON_ERROR => {
            js::add(&inner.callbacks.borrow().error, &a);
        }
        CLOSE_CLIENT => {
            inner.closed.set(true);
            inner.session.borrow_mut().close(now());
            pump(&inner);
        }
        CONNECT => {
            inner.session.borrow_mut().connect(now());
            pump(&inner);
        }
        SIGNAL => {
            let (event, data) = (js::get(&b, &0.into()), js::get(&b, &1.into()));
            let sent = inner.session.borrow_mut().signal(
                &a.as_string().unwrap_or_default(),
                &event.as_string().unwrap_or_default(),
                &data.as_string().unwrap_or_default(),
            );
            pump(&inner);
            return Ok(sent.is_ok().into());
        }
        REQUEST => {
            let at = |i: u32| js::get(&a, &i.into());
            let channel = at(1).as_string().unwrap_or_default();
            let req = match at(0).as_f64() {
                Some(0.0) => inner.session.borrow_mut().presence(now(), &channel),
                _ => {
                    let limit = at(2).as_f64().map(|n| n as u32);
                    inner.session.borrow_mut().history(now(), &channel, limit)
                }
            };
            let req = req.map_err(|e| crate::js_error(&e.message()))?;
            inner.callbacks.borrow_mut().requests.push((req, b));
            pump(&inner);
        }
        _ => {
            inner.on(tag, a, b);
            pump(&inner);
        }
    }
    Ok(JsValue::UNDEFINED)
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
