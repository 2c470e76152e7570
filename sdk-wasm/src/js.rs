//! What the driver calls in JavaScript: a few built-ins, bound directly so that no value crosses
//! into wasm memory unless the session needs it, and the driver's JS half, `js/bridge.js`
//! (socket and page wiring, options, and the objects handed to callbacks, built in JS instead of
//! one wasm→JS call per property). `scripts/build-npm.sh` folds the bridge into the glue.

#[cfg(feature = "vectors")]
use alloc::string::String;
use wasm_bindgen::prelude::*;

#[wasm_bindgen]
extern "C" {
    /// `Reflect.get(target, key)`. Only ever called on objects made by `JSON.parse` or by the
    /// bridge, never on `null`/`undefined`.
    #[wasm_bindgen(js_namespace = Reflect, js_name = get)]
    pub fn get(target: &JsValue, key: &JsValue) -> JsValue;

    /// `Object.is(a, b)`: for two strings, whether they are equal (no copy into wasm).
    #[wasm_bindgen(js_namespace = Object, js_name = is)]
    pub fn same(a: &JsValue, b: &JsValue) -> bool;

    /// `performance.now()`: monotonic milliseconds (browsers and Node).
    #[wasm_bindgen(js_namespace = performance, js_name = now)]
    pub fn perf_now() -> f64;

    /// `Math.random()`.
    #[wasm_bindgen(js_namespace = Math, js_name = random)]
    pub fn random() -> f64;

    /// `clearTimeout(handle)`.
    #[wasm_bindgen(js_name = clearTimeout)]
    pub fn clear_timeout(handle: &JsValue);
}

#[wasm_bindgen]
extern "C" {
    /// The global `WebSocket` (browsers; Node >= 22, or 20 with `--experimental-websocket`).
    /// Bound here rather than through web-sys: web-sys brings js-sys, whose closure descriptors
    /// keep ~2.5 KB of unused closure shims in the bundle.
    pub type WebSocket;

    /// `new WebSocket(url)`; throws (→ `Err`) on a malformed URL.
    #[wasm_bindgen(constructor, catch)]
    pub fn new(url: &JsValue) -> Result<WebSocket, JsValue>;

    /// `ws.readyState`.
    #[wasm_bindgen(method, getter, js_name = readyState)]
    pub fn ready_state(this: &WebSocket) -> u16;

    /// `ws.send(text)`; throws (→ `Err`) when the socket is not open.
    #[wasm_bindgen(method, catch)]
    pub fn send(this: &WebSocket, text: &str) -> Result<(), JsValue>;

    /// `ws.close()`.
    #[wasm_bindgen(method, catch, js_name = close)]
    pub fn close(this: &WebSocket) -> Result<(), JsValue>;

    /// `ws.close(code, reason)`; throws (→ `Err`) on a code scripts may not send.
    #[wasm_bindgen(method, catch, js_name = close)]
    pub fn close_with(this: &WebSocket, code: u16, reason: &str) -> Result<(), JsValue>;
}

/// `WebSocket.OPEN`.
pub const OPEN: u16 = 1;

/// The bridge. `h` is always the driver's handler, `h(tag, a, b)` (tags in `driver`).
#[wasm_bindgen(module = "/js/bridge.js")]
extern "C" {
    /// The text of a thrown value (its `message` when it has one).
    pub fn text(e: &JsValue) -> JsValue;

    /// Sets the socket's `onopen`/`onmessage`/`onclose`/`onerror` to call `h`, or clears them
    /// (`h` null). Messages arrive parsed (`undefined` when not JSON).
    pub fn wire(ws: &WebSocket, h: &JsValue);

    /// `setTimeout(() => h(TIMER), ms)`.
    pub fn timer(h: &JsValue, ms: f64) -> JsValue;

    /// `queueMicrotask(() => h(START))`.
    pub fn soon(h: &JsValue);

    /// Page lifecycle listeners calling `h(PAGE, kind)`; returns the function that removes them
    /// (`undefined` where there is no page, as in Node).
    pub fn page(h: &JsValue) -> JsValue;

    /// Calls the token provider; its answer, whatever form it takes (value, promise, throw),
    /// comes back as `h(TOKEN | TOKEN_FAILED | TOKEN_REFUSED, gen, value)`.
    pub fn token(provider: &JsValue, h: &JsValue, gen: u32);

    /// The client options as `[token, base, max, interval, timeout, connectTimeout]` (NaN:
    /// absent); throws a `TypeError` naming the bad option.
    #[wasm_bindgen(catch)]
    pub fn options(options: &JsValue) -> Result<JsValue, JsValue>;

    /// A subscription's callbacks as one object; throws a `TypeError` for a non-function.
    #[wasm_bindgen(catch)]
    pub fn handlers(callback: &JsValue, handlers: &JsValue) -> Result<JsValue, JsValue>;

    /// The `SubscriptionHandle` of subscription `id`: `{ channel, state, unsubscribe() }`, whose
    /// getter and method call `h(SUB_STATE | UNSUBSCRIBE, id)`.
    pub fn handle(h: &JsValue, id: f64, channel: &str) -> JsValue;

    /// A new empty array (of listeners).
    pub fn list() -> JsValue;

    /// `list.push(f)`.
    pub fn add(list: &JsValue, f: &JsValue);

    /// `f()`, when `f` is a function.
    pub fn run(f: &JsValue);

    /// A `RealtimeClient` object over the handler `h`.
    pub fn client(h: &JsValue) -> JsValue;

    /// An event frame to the subscription's callback.
    pub fn event(handlers: &JsValue, frame: &JsValue);

    /// A `StateChange` to every listener of `listeners`.
    pub fn state(
        listeners: &JsValue,
        state: &str,
        reason: &str,
        code: Option<u16>,
        retry_in: Option<f64>,
        attempt: Option<u32>,
    );

    /// A `SubscriptionState` to the subscription's `onState`.
    pub fn sub(
        handlers: &JsValue,
        channel: &str,
        state: &str,
        recovered: Option<bool>,
        code: Option<&str>,
        message: Option<&str>,
    );

    /// A `Gap` to the subscription's `onGap`.
    pub fn gap(
        handlers: &JsValue,
        channel: &str,
        last_seq: Option<f64>,
        resume_seq: Option<f64>,
        reason: &str,
    );

    /// An `ErrorInfo` to every listener of `listeners`.
    pub fn error(listeners: &JsValue, code: Option<&str>, message: &str);

    /// `{ user, connections }` pushed onto the member list `list`.
    pub fn member(list: &JsValue, user: &str, connections: u32);

    /// The member list to the subscription's `onPresence`.
    pub fn presence(handlers: &JsValue, members: &JsValue);

    /// A join (`joined`) or leave to the subscription's `onJoin` / `onLeave`.
    pub fn join(handlers: &JsValue, user: &str, joined: bool);

    /// A signal frame to the subscription's `onSignal`.
    pub fn signal(handlers: &JsValue, frame: &JsValue);

    /// Settles a request (`pr`: `[resolve, reject]`) with `frame`, or with an `Error` when
    /// `message` is set.
    pub fn settle(pr: &JsValue, frame: &JsValue, code: Option<&str>, message: Option<&str>);
}

#[cfg(feature = "vectors")]
/// The parts one after the other (`concat` without `join`'s generic code).
pub fn cat(parts: &[&str]) -> String {
    let mut out = String::new();
    for p in parts {
        out.push_str(p);
    }
    out
}

#[cfg(feature = "vectors")]
/// `obj[key]`, or `undefined` when `obj` is not an object.
pub fn field(obj: &JsValue, key: &str) -> JsValue {
    if obj.is_object() {
        get(obj, &JsValue::from_str(key))
    } else {
        JsValue::UNDEFINED
    }
}
