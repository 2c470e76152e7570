//! The driver: one [`Session`] plus the I/O around it — a `web_sys::WebSocket`, one timer,
//! the token provider's promise and the page listeners. Every decision (when to connect, what to
//! send, who gets which event, backoff, heartbeat, dedupe, gaps) is the session's; this module
//! only feeds it inputs and carries out its outputs.
//!
//! The loop is the session's rule: after every input, [`pump`] drains `poll_action`,
//! `poll_transmit` and `poll_event`, then arms the timer for `poll_timeout`. Application callbacks
//! run with no `RefCell` borrowed, so they may call back into the client; a nested `pump` returns
//! at once and the outer one drains what the callback caused.

use crate::api::{ErrorInfo, Gap, StateChange, SubscriptionState};
use crate::browser::{PageEvent, PageListeners};
use crate::decode::{self, Keys};
use crate::js;
use alloc::rc::{Rc, Weak};
use alloc::string::String;
use alloc::vec::Vec;
use core::cell::{Cell, RefCell};
use core::time::Duration;
use guts_realtime::session::{Action, ConnectionState, Event, Session, SubId, TokenError};
use js_sys::Function;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{CloseEvent, MessageEvent, WebSocket};

/// The session's clock: `performance.now()` as a [`Duration`].
pub(crate) fn now() -> Duration {
    Duration::from_micros((js::perf_now().max(0.0) * 1e3) as u64)
}

/// The callbacks of one subscription handle.
pub(crate) struct SubCallbacks {
    pub(crate) on_event: Function,
    pub(crate) on_state: Option<Function>,
    pub(crate) on_gap: Option<Function>,
}

/// Application listeners.
#[derive(Default)]
pub(crate) struct Callbacks {
    pub(crate) state: Vec<Function>,
    pub(crate) error: Vec<Function>,
    /// Sorted by handle (handles only grow, so `push` keeps the order).
    subs: Vec<(SubId, Rc<SubCallbacks>)>,
}

impl Callbacks {
    pub(crate) fn add_sub(&mut self, sub: SubId, cbs: SubCallbacks) {
        self.subs.push((sub, Rc::new(cbs)));
    }

    pub(crate) fn remove_sub(&mut self, sub: SubId) {
        if let Ok(i) = self.subs.binary_search_by_key(&sub, |(s, _)| *s) {
            self.subs.remove(i);
        }
    }

    fn sub(&self, sub: SubId) -> Option<Rc<SubCallbacks>> {
        let i = self.subs.binary_search_by_key(&sub, |(s, _)| *s).ok()?;
        Some(self.subs[i].1.clone())
    }
}

/// Every JS → driver callback has this one type (a single closure shim in the JS glue).
type Handler = Closure<dyn FnMut(JsValue)>;

/// The socket and timer handlers, made once per client and set on each new socket / timeout.
struct Handlers {
    open: Handler,
    message: Handler,
    close: Handler,
    error: Handler,
    timer: Handler,
}

/// What the driver holds besides the session.
#[derive(Default)]
pub(crate) struct Io {
    ws: Option<WebSocket>,
    handlers: Option<Handlers>,
    /// The armed `setTimeout` and the session deadline (ms, `performance.now()` scale) it fires
    /// for.
    timer: Option<(f64, JsValue)>,
    page: Option<PageListeners>,
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
    url: String,
    token: Option<Function>,
    keys: Keys,
    pumping: Cell<bool>,
    pub(crate) closed: Cell<bool>,
}

impl Inner {
    /// A client that has not started; [`Inner::start`] connects.
    pub(crate) fn new(url: String, session: Session<JsValue>, token: Option<Function>) -> Rc<Self> {
        let inner = Rc::new_cyclic(|weak: &Weak<Inner>| {
            let on = |f: fn(&Rc<Inner>, JsValue)| -> Handler {
                let weak = weak.clone();
                Closure::new(move |ev: JsValue| {
                    if let Some(inner) = weak.upgrade() {
                        f(&inner, ev);
                        pump(&inner);
                    }
                })
            };
            let handlers = Handlers {
                open: on(|i, _| i.session.borrow_mut().handle_open(now())),
                message: on(|i, ev| {
                    let data = ev.unchecked_into::<MessageEvent>().data();
                    let frame = decode::decode(&i.keys, &data);
                    i.session.borrow_mut().handle_frame(now(), frame);
                }),
                close: on(|i, ev| {
                    // Node 20 has no global CloseEvent: read the fields without a type check.
                    let ev = ev.unchecked_into::<CloseEvent>();
                    if let Some(ws) = i.io.borrow_mut().ws.take() {
                        detach(&ws);
                    }
                    i.session.borrow_mut().handle_close(now(), ev.code(), &ev.reason());
                }),
                // `error` means the connection failed (1006). Browsers follow it with `close`,
                // but Node 20 does not when the connection is refused: report it here, once.
                error: on(|i, _| {
                    if let Some(ws) = i.io.borrow_mut().ws.take() {
                        detach(&ws);
                        let _ = ws.close();
                    }
                    i.session.borrow_mut().handle_close(now(), 1006, "connection failed");
                }),
                timer: on(|i, _| {
                    i.io.borrow_mut().timer = None;
                    i.session.borrow_mut().handle_timeout(now());
                }),
            };
            Inner {
                session: RefCell::new(session),
                callbacks: RefCell::new(Callbacks::default()),
                io: RefCell::new(Io { handlers: Some(handlers), ..Io::default() }),
                url,
                token,
                keys: Keys::new(),
                pumping: Cell::new(false),
                closed: Cell::new(false),
            }
        });
        let weak = Rc::downgrade(&inner);
        inner.io.borrow_mut().page = PageListeners::attach(move |ev| {
            if let Some(inner) = weak.upgrade() {
                let t = now();
                {
                    let mut s = inner.session.borrow_mut();
                    match ev {
                        PageEvent::Online => s.handle_network(t, true),
                        PageEvent::Offline => s.handle_network(t, false),
                        PageEvent::Resumed => s.check_liveness(t),
                        PageEvent::Hidden => s.release(t, "page hidden"),
                    }
                }
                pump(&inner);
            }
        });
        inner
    }

    /// Connects on the next microtask, so listeners registered right after the constructor see
    /// the first `connecting` state.
    pub(crate) fn start(self: &Rc<Self>) {
        self.io.borrow_mut().alive = Some(self.clone());
        let weak = Rc::downgrade(self);
        js::queue_microtask(&Closure::once_into_js(move |_: JsValue| {
            if let Some(inner) = weak.upgrade() {
                if !inner.closed.get() {
                    inner.session.borrow_mut().connect(now());
                    pump(&inner);
                }
            }
        }));
    }

    /// Releases every resource once closed (at the end of the `pump` that delivered `closed`):
    /// socket handlers, the timer, page listeners and application callbacks.
    fn shutdown(&self) {
        let mut io = self.io.borrow_mut();
        if let Some(ws) = io.ws.take() {
            detach(&ws);
            let _ = ws.close_with_code_and_reason(1000, "client closed");
        }
        io.clear_timer();
        io.page = None;
        io.handlers = None;
        io.token_gen = io.token_gen.wrapping_add(1);
        // The caller holds a strong reference of its own: dropping this one frees nothing yet.
        let alive = io.alive.take();
        drop(io);
        let taken = core::mem::take(&mut *self.callbacks.borrow_mut());
        drop(taken);
        drop(alive);
    }

    fn perform(self: &Rc<Self>, action: Action) {
        match action {
            Action::FetchToken => self.fetch_token(),
            Action::Connect => match WebSocket::new(&self.url) {
                Ok(ws) => {
                    let mut io = self.io.borrow_mut();
                    if let Some(h) = &io.handlers {
                        ws.set_onopen(Some(h.open.as_ref().unchecked_ref()));
                        ws.set_onmessage(Some(h.message.as_ref().unchecked_ref()));
                        ws.set_onclose(Some(h.close.as_ref().unchecked_ref()));
                        ws.set_onerror(Some(h.error.as_ref().unchecked_ref()));
                    }
                    if let Some(old) = io.ws.replace(ws) {
                        detach(&old);
                        let _ = old.close();
                    }
                }
                Err(e) => {
                    let why = js::error_text(&e);
                    self.session.borrow_mut().handle_close(now(), 1006, &why);
                }
            },
            Action::Close { code, reason } => {
                if let Some(ws) = self.io.borrow_mut().ws.take() {
                    detach(&ws);
                    // Browsers only accept 1000 and 3000–4999 from scripts.
                    let code =
                        if code == 1000 || (3000..5000).contains(&code) { code } else { 1000 };
                    let _ = ws.close_with_code_and_reason(code, &reason);
                }
            }
        }
    }

    /// Calls the token provider; its answer (sync value, promise, throw) becomes `handle_token`.
    fn fetch_token(self: &Rc<Self>) {
        let Some(provider) = &self.token else {
            self.session.borrow_mut().handle_token(now(), Ok(None));
            return;
        };
        let gen = {
            let mut io = self.io.borrow_mut();
            io.token_gen = io.token_gen.wrapping_add(1);
            io.token_gen
        };
        let answer = |weak: Weak<Inner>, ok: bool| {
            Closure::once_into_js(move |v: JsValue| {
                let Some(inner) = weak.upgrade() else { return };
                if inner.io.borrow().token_gen != gen || inner.closed.get() {
                    return;
                }
                let result = if ok { token_value(&v) } else { Err(token_error(&v)) };
                inner.session.borrow_mut().handle_token(now(), result);
                pump(&inner);
            })
        };
        match provider.call0(&JsValue::UNDEFINED) {
            Ok(v) => {
                let weak = Rc::downgrade(self);
                js::Promise::resolve(&v).then(&answer(weak.clone(), true), &answer(weak, false));
            }
            Err(e) => self.session.borrow_mut().handle_token(now(), Err(token_error(&e))),
        }
    }

    fn send(&self, text: &str) {
        if let Some(ws) = &self.io.borrow().ws {
            if ws.ready_state() == WebSocket::OPEN {
                let _ = ws.send_with_str(text);
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
        let Some(h) = &io.handlers else { return };
        // Rounded up (`f64::ceil` is std-only), so the timer never fires before the deadline.
        let delay = (at - js::perf_now()).clamp(0.0, 2_000_000_000.0);
        let whole = delay as u32 as f64;
        let delay = if whole < delay { whole + 1.0 } else { whole };
        let handle = js::set_timeout(h.timer.as_ref(), delay);
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
                if let Some(cb) = subs(sub) {
                    call(&cb.on_event, &payload);
                }
            }
            Event::State { state, reason, code } => {
                let listeners = self.callbacks.borrow().state.clone();
                if !listeners.is_empty() {
                    let change = StateChange::new(&state, reason, code).to_js();
                    for f in &listeners {
                        call(f, &change);
                    }
                }
            }
            Event::Subscription { sub, channel, state } => {
                if let Some(f) = subs(sub).and_then(|cb| cb.on_state.clone()) {
                    call(&f, &SubscriptionState::new(channel, state).to_js());
                }
            }
            Event::Gap { sub, channel, last_seq, resume_seq, reason } => {
                if let Some(f) = subs(sub).and_then(|cb| cb.on_gap.clone()) {
                    let gap = Gap { channel, last_seq, resume_seq, reason: reason.into() };
                    call(&f, &gap.to_js());
                }
            }
            Event::Error { code, message } => {
                let listeners = self.callbacks.borrow().error.clone();
                let info = ErrorInfo { code, message }.to_js();
                for f in &listeners {
                    call(f, &info);
                }
            }
            Event::Authenticated { .. } => {}
        }
    }
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

/// Calls an application callback; an exception it throws is logged, never propagated into the
/// driver.
fn call(f: &Function, arg: &JsValue) {
    if let Err(e) = f.call1(&JsValue::UNDEFINED, arg) {
        js::console_error("guts-realtime: a callback threw", &e);
    }
}

/// Removes the handlers from a socket the session is done with: it reports nothing more.
fn detach(ws: &WebSocket) {
    ws.set_onopen(None);
    ws.set_onmessage(None);
    ws.set_onclose(None);
    ws.set_onerror(None);
}

fn token_value(v: &JsValue) -> Result<Option<String>, TokenError> {
    if v.is_null() || v.is_undefined() {
        return Ok(None);
    }
    match v.as_string() {
        Some(t) if t.is_empty() => Ok(None),
        Some(t) => Ok(Some(t)),
        None => Err(TokenError::Transient("token provider returned a non-string".into())),
    }
}

fn token_error(e: &JsValue) -> TokenError {
    let text = js::error_text(e);
    let flagged = js::field(e, "unauthorized").is_truthy()
        || js::field(e, "name").as_string().as_deref() == Some("UnauthorizedError");
    if flagged {
        TokenError::Unauthorized(text)
    } else {
        TokenError::Transient(text)
    }
}
