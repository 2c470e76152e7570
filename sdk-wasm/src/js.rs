//! The few JavaScript built-ins the driver calls, bound directly so that no value crosses into
//! wasm memory unless the session needs it (`JSON.parse` takes the frame's JS string as is), and
//! no JS glue is generated for what the driver does not use.

use alloc::string::String;
use wasm_bindgen::prelude::*;

#[wasm_bindgen]
extern "C" {
    /// `JSON.parse(text)`; throws (→ `Err`) on malformed JSON.
    #[wasm_bindgen(js_namespace = JSON, js_name = parse, catch)]
    pub fn json_parse(text: &JsValue) -> Result<JsValue, JsValue>;

    /// `Reflect.get(target, key)`. Only ever called on objects made by `JSON.parse` or handed in
    /// by the application as options (plain data), never on `null`/`undefined`.
    #[wasm_bindgen(js_namespace = Reflect, js_name = get)]
    pub fn get(target: &JsValue, key: &JsValue) -> JsValue;

    /// `Reflect.set(target, key, value)` on an object the driver made.
    #[wasm_bindgen(js_namespace = Reflect, js_name = set)]
    pub fn set(target: &JsValue, key: &str, value: &JsValue);

    /// `Object.is(a, b)`: for two strings, whether they are equal (no copy into wasm).
    #[wasm_bindgen(js_namespace = Object, js_name = is)]
    pub fn same(a: &JsValue, b: &JsValue) -> bool;

    /// `performance.now()`: monotonic milliseconds (browsers and Node).
    #[wasm_bindgen(js_namespace = performance, js_name = now)]
    pub fn perf_now() -> f64;

    /// `Math.random()`.
    #[wasm_bindgen(js_namespace = Math, js_name = random)]
    pub fn random() -> f64;

    /// `queueMicrotask(f)`.
    #[wasm_bindgen(js_name = queueMicrotask)]
    pub fn queue_microtask(f: &JsValue);

    /// `setTimeout(f, ms)`: a number in browsers, a `Timeout` object in Node.
    #[wasm_bindgen(js_name = setTimeout)]
    pub fn set_timeout(f: &JsValue, ms: f64) -> JsValue;

    /// `clearTimeout(handle)`.
    #[wasm_bindgen(js_name = clearTimeout)]
    pub fn clear_timeout(handle: &JsValue);

    /// `globalThis.addEventListener(type, f)` (the window in a page); throws (→ `Err`) where the
    /// global scope is no event target (Node).
    #[wasm_bindgen(js_namespace = globalThis, js_name = addEventListener, catch)]
    pub fn add_global_listener(kind: &str, f: &JsValue) -> Result<(), JsValue>;

    /// `globalThis.removeEventListener(type, f)`.
    #[wasm_bindgen(js_namespace = globalThis, js_name = removeEventListener, catch)]
    pub fn remove_global_listener(kind: &str, f: &JsValue) -> Result<(), JsValue>;

    /// `document.addEventListener(type, f)`; throws (→ `Err`) where there is no `document`.
    #[wasm_bindgen(js_namespace = document, js_name = addEventListener, catch)]
    pub fn add_document_listener(kind: &str, f: &JsValue) -> Result<(), JsValue>;

    /// `document.removeEventListener(type, f)`.
    #[wasm_bindgen(js_namespace = document, js_name = removeEventListener, catch)]
    pub fn remove_document_listener(kind: &str, f: &JsValue) -> Result<(), JsValue>;

    /// `console.error(message, value)`: where exceptions thrown by application callbacks go.
    #[wasm_bindgen(js_namespace = console, js_name = error)]
    pub fn console_error(message: &str, value: &JsValue);

    /// A promise (or any thenable, after `Promise.resolve`).
    pub type Promise;

    /// `Promise.resolve(value)`.
    #[wasm_bindgen(static_method_of = Promise, js_name = resolve)]
    pub fn resolve(value: &JsValue) -> Promise;

    /// `promise.then(onFulfilled, onRejected)`.
    #[wasm_bindgen(method)]
    pub fn then(this: &Promise, ok: &JsValue, err: &JsValue) -> Promise;
}

/// The parts one after the other (`concat` without `join`'s generic code).
pub fn cat(parts: &[&str]) -> String {
    let mut out = String::new();
    for p in parts {
        out.push_str(p);
    }
    out
}

/// `obj[key]`, or `undefined` when `obj` is not an object.
pub fn field(obj: &JsValue, key: &str) -> JsValue {
    if obj.is_object() {
        get(obj, &JsValue::from_str(key))
    } else {
        JsValue::UNDEFINED
    }
}

/// `value.toString()`-like text of a thrown value: its `message` when it has one.
pub fn error_text(value: &JsValue) -> String {
    field(value, "message")
        .as_string()
        .or_else(|| value.as_string())
        .unwrap_or_else(|| "error".into())
}
