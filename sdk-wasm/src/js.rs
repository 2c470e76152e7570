//! The few JavaScript built-ins the driver calls, bound directly so that no value crosses into
//! wasm memory unless the session needs it (`JSON.parse` takes the frame's JS string as is).

use wasm_bindgen::prelude::*;

#[wasm_bindgen]
extern "C" {
    /// `JSON.parse(text)`; throws (→ `Err`) on malformed JSON.
    #[wasm_bindgen(js_namespace = JSON, js_name = parse, catch)]
    pub fn json_parse(text: &JsValue) -> Result<JsValue, JsValue>;

    /// `Reflect.get(target, key)`. Only ever called on objects made by `JSON.parse` (plain data,
    /// no getters), so it cannot throw.
    #[wasm_bindgen(js_namespace = Reflect, js_name = get)]
    pub fn get(target: &JsValue, key: &JsValue) -> JsValue;

    /// `performance.now()`: monotonic milliseconds (browsers and Node).
    #[wasm_bindgen(js_namespace = performance, js_name = now)]
    pub fn perf_now() -> f64;

    /// `Math.random()`.
    #[wasm_bindgen(js_namespace = Math, js_name = random)]
    pub fn random() -> f64;

    /// `queueMicrotask(f)`.
    #[wasm_bindgen(js_name = queueMicrotask)]
    pub fn queue_microtask(f: &JsValue);

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

/// `value.toString()`-like text of a thrown value: its `message` when it has one.
pub fn error_text(value: &JsValue) -> String {
    if value.is_object() {
        if let Some(m) = get(value, &JsValue::from_str("message")).as_string() {
            return m;
        }
    }
    value.as_string().unwrap_or_else(|| "error".into())
}
