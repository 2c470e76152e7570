//! What the driver calls in JavaScript: a few built-ins, bound directly so that no value crosses
//! into wasm memory unless the session needs it, and the driver's JS half, `js/bridge.js`
//! (socket, timer and page wiring, and the `RealtimeClient` the reports go to).
//! `scripts/build-npm.sh` folds the bridge into the glue.

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

/// The bridge. `h` is always the driver's handler, `h(tag, a, b)` (tags in `driver`).
#[wasm_bindgen(module = "/js/bridge.js")]
extern "C" {
    /// The text of a thrown value (its `message` when it has one).
    pub fn text(e: &JsValue) -> JsValue;

    /// A socket for `url`, made with the client's `WebSocket` constructor `ws` and wired to
    /// call `h`; throws (→ `Err`) on a malformed URL.
    #[wasm_bindgen(catch)]
    pub fn open(h: &JsValue, url: &JsValue, ws: &JsValue) -> Result<JsValue, JsValue>;

    /// `ws.send(text)` when the socket is open.
    pub fn send(ws: &JsValue, text: &str);

    /// Unwires the socket and closes it (with `code` and `reason` unless `code` is 0).
    pub fn shut(ws: &JsValue, code: u16, reason: &str);

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

    /// Gives the bridge the client factory (`h0(CREATE, url, [options, emit, WebSocket])`).
    pub fn register(factory: &JsValue);

    /// `new RealtimeClient(url, options)` (the bridge's class), for the `createClient` export.
    #[wasm_bindgen(catch)]
    pub fn construct(url: &JsValue, options: &JsValue) -> Result<JsValue, JsValue>;

    /// One report to the application: `emit(kind, target, a, b, c, d)` (kinds in `driver`).
    pub fn emit(
        emit: &JsValue,
        kind: u32,
        target: &JsValue,
        a: &JsValue,
        b: &JsValue,
        c: &JsValue,
        d: &JsValue,
    );

    /// A new empty array.
    pub fn list() -> JsValue;

    /// `[a, b]`.
    pub fn pair(a: &JsValue, b: &JsValue) -> JsValue;

    /// `{ user, connections }` pushed onto the member list `list`.
    pub fn member(list: &JsValue, user: &str, connections: u32);

    /// `f()`, when `f` is a function.
    pub fn run(f: &JsValue);
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
