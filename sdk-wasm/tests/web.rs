//! wasm-bindgen tests of the driver against a real `guts-hub` on 127.0.0.1, run by
//! `scripts/test-wasm.sh` in Node 20 (`NODE_ARGS=--experimental-websocket`) and in headless
//! Chromium (`WASM_BINDGEN_USE_BROWSER=1`). The hub's address, publish key and a valid token come
//! from the environment at compile time (`GUTS_TEST_HUB`, `GUTS_TEST_PUBLISH_KEY`,
//! `GUTS_TEST_TOKEN`).
#![cfg(target_arch = "wasm32")]

use gloo_timers::future::TimeoutFuture;
use guts_realtime_wasm::create_client;
use js_sys::{Function, Object, Reflect};
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_test::*;
use web_sys::{MessageEvent, WebSocket};

const HUB: &str = match option_env!("GUTS_TEST_HUB") {
    Some(h) => h,
    None => "127.0.0.1:17820",
};
const PUBLISH_KEY: &str = match option_env!("GUTS_TEST_PUBLISH_KEY") {
    Some(k) => k,
    None => "wasm-test-publish-key",
};
const TOKEN: Option<&str> = option_env!("GUTS_TEST_TOKEN");

fn ws_url() -> String {
    format!("ws://{HUB}/ws")
}

/// The package's `RealtimeClient` object (made by `createClient`), driven through its JS methods
/// as an application does.
struct RealtimeClient(JsValue);

impl RealtimeClient {
    fn new(url: String, options: JsValue) -> Result<RealtimeClient, JsValue> {
        create_client(url.into(), options).map(RealtimeClient)
    }

    fn call(&self, method: &str, args: &[&JsValue]) -> Result<JsValue, JsValue> {
        let f = get(&self.0, method).unchecked_into::<Function>();
        let args: js_sys::Array = args.iter().copied().collect();
        f.apply(&self.0, &args)
    }

    fn on_state(&self, f: Function) {
        self.call("onState", &[&f]).unwrap();
    }

    fn subscribe(&self, ch: &str, f: Function, handlers: JsValue) -> Result<JsValue, JsValue> {
        self.call("subscribe", &[&ch.into(), &f, &handlers])
    }

    fn state(&self) -> String {
        text(&self.0, "state")
    }

    fn close(&self) {
        self.call("close", &[]).unwrap();
    }
}

fn get(v: &JsValue, key: &str) -> JsValue {
    Reflect::get(v, &JsValue::from_str(key)).unwrap_or(JsValue::UNDEFINED)
}

fn text(v: &JsValue, key: &str) -> String {
    get(v, key).as_string().unwrap_or_default()
}

/// A JS function that records every argument it is called with.
fn recorder() -> (Function, Rc<RefCell<Vec<JsValue>>>) {
    let seen = Rc::new(RefCell::new(Vec::new()));
    let s = seen.clone();
    let f = Closure::<dyn FnMut(JsValue)>::new(move |v: JsValue| s.borrow_mut().push(v));
    let func = f.as_ref().unchecked_ref::<Function>().clone();
    f.forget();
    (func, seen)
}

/// Waits (polling every 20 ms, at most `ms`) until `done` holds.
async fn until(ms: u32, what: &str, mut done: impl FnMut() -> bool) {
    let mut waited = 0;
    while !done() {
        assert!(waited < ms, "timed out after {ms} ms waiting for {what}");
        TimeoutFuture::new(20).await;
        waited += 20;
    }
}

fn states(seen: &Rc<RefCell<Vec<JsValue>>>) -> Vec<String> {
    seen.borrow().iter().map(|s| text(s, "state")).collect()
}

/// A unique channel per test run, so runs and tests do not see each other's events.
fn channel(name: &str) -> String {
    format!("repo:wasmtest/{name}-{}", (js_sys::Math::random() * 1e9) as u64)
}

/// Publishes events over a raw WebSocket authenticated with the publish key.
async fn publish(channel: &str, event: &str, count: usize) {
    let ws = WebSocket::new(&ws_url()).expect("publisher socket");
    let replies = Rc::new(RefCell::new(Vec::<String>::new()));
    let r = replies.clone();
    let on_msg = Closure::<dyn FnMut(MessageEvent)>::new(move |e: MessageEvent| {
        r.borrow_mut().push(e.data().as_string().unwrap_or_default())
    });
    ws.set_onmessage(Some(on_msg.as_ref().unchecked_ref()));
    until(5000, "publisher open", || ws.ready_state() == WebSocket::OPEN).await;
    ws.send_with_str(&format!(r#"{{"type":"auth","token":"{PUBLISH_KEY}"}}"#)).unwrap();
    for i in 0..count {
        let frame = format!(
            r#"{{"type":"publish","channel":"{channel}","event":"{event}","data":{{"i":{i}}}}}"#
        );
        ws.send_with_str(&frame).unwrap();
    }
    until(5000, "publish acks", || {
        replies.borrow().iter().filter(|t| t.contains("\"published\"")).count() == count
    })
    .await;
    ws.close().unwrap();
    drop(on_msg);
}

fn options(token: Option<Function>) -> JsValue {
    let o = Object::new();
    if let Some(t) = token {
        Reflect::set(&o, &"token".into(), &t).unwrap();
    }
    let backoff = Object::new();
    Reflect::set(&backoff, &"base".into(), &100.into()).unwrap();
    Reflect::set(&backoff, &"max".into(), &1000.into()).unwrap();
    Reflect::set(&o, &"backoff".into(), &backoff).unwrap();
    o.into()
}

/// A token provider resolving (asynchronously) to `token`.
fn token_provider(token: &str) -> Function {
    Function::new_no_args(&format!("return Promise.resolve({token:?});"))
}

#[wasm_bindgen_test]
async fn subscribes_and_receives_published_events_in_order() {
    let client = RealtimeClient::new(ws_url(), options(None)).unwrap();
    let (on_state, seen_states) = recorder();
    client.on_state(on_state);
    let ch = channel("recv");
    let (on_event, events) = recorder();
    let (on_sub, sub_states) = recorder();
    let handlers = Object::new();
    Reflect::set(&handlers, &"onState".into(), &on_sub).unwrap();
    let sub = client.subscribe(&ch, on_event, handlers.into()).unwrap();
    assert_eq!(text(&sub, "channel"), ch);
    assert_eq!(text(&sub, "state"), "subscribing");
    until(5000, "subscribed", || states(&sub_states).contains(&"subscribed".to_string())).await;
    assert_eq!(client.state(), "connected");
    assert_eq!(text(&sub, "state"), "subscribed");
    publish(&ch, "push", 5).await;
    until(5000, "5 events", || events.borrow().len() == 5).await;
    let seqs: Vec<f64> = events.borrow().iter().map(|e| get(e, "seq").as_f64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1.0), "seqs in order: {seqs:?}");
    let first = events.borrow()[0].clone();
    assert_eq!(text(&first, "type"), "event");
    assert_eq!(text(&first, "channel"), ch);
    assert_eq!(text(&first, "event"), "push");
    assert_eq!(get(&get(&first, "data"), "i").as_f64(), Some(0.0));
    assert_eq!(states(&seen_states)[..2], ["connecting", "connected"]);
    get(&sub, "unsubscribe").unchecked_into::<Function>().call0(&sub).unwrap();
    assert_eq!(text(&sub, "state"), "unsubscribed");
    client.close();
    assert_eq!(states(&seen_states).last().map(String::as_str), Some("closed"));
    assert_eq!(client.state(), "closed");
}

#[wasm_bindgen_test]
async fn a_valid_token_authenticates() {
    let Some(token) = TOKEN else { return };
    let client = RealtimeClient::new(ws_url(), options(Some(token_provider(token)))).unwrap();
    let (on_state, seen) = recorder();
    client.on_state(on_state);
    until(5000, "connected", || states(&seen).contains(&"connected".to_string())).await;
    assert_eq!(states(&seen), ["connecting", "authenticating", "connected"]);
    client.close();
}

#[wasm_bindgen_test]
async fn a_rejected_token_is_terminal() {
    let client =
        RealtimeClient::new(ws_url(), options(Some(token_provider("not-a-token")))).unwrap();
    let (on_state, seen) = recorder();
    client.on_state(on_state);
    until(5000, "closed", || states(&seen).contains(&"closed".to_string())).await;
    let last = seen.borrow().last().cloned().unwrap();
    assert_eq!(get(&last, "code").as_f64(), Some(4001.0), "{:?}", text(&last, "reason"));
    assert!(text(&last, "reason").starts_with("unauthenticated"), "{}", text(&last, "reason"));
    // Nothing retries: still closed a while later.
    TimeoutFuture::new(600).await;
    assert_eq!(states(&seen).iter().filter(|s| *s == "connecting").count(), 1);
    client.close();
}

#[wasm_bindgen_test]
async fn a_provider_rejecting_with_unauthorized_error_stops_at_once() {
    let provider = Function::new_no_args(
        "const e = new Error('signed out'); e.name = 'UnauthorizedError'; return Promise.reject(e);",
    );
    let client = RealtimeClient::new(ws_url(), options(Some(provider))).unwrap();
    let (on_state, seen) = recorder();
    client.on_state(on_state);
    until(3000, "closed", || states(&seen).contains(&"closed".to_string())).await;
    assert_eq!(states(&seen), ["connecting", "closed"]);
    assert!(text(&seen.borrow()[1], "reason").contains("signed out"));
    client.close();
}

#[wasm_bindgen_test]
async fn a_refused_connection_reconnects_with_backoff() {
    // Nothing listens on port 9 of 127.0.0.1: each attempt fails, the session backs off.
    let client = RealtimeClient::new("ws://127.0.0.1:9/ws".into(), options(None)).unwrap();
    let (on_state, seen) = recorder();
    client.on_state(on_state);
    until(5000, "two reconnect waits", || {
        states(&seen).iter().filter(|s| *s == "reconnecting").count() >= 2
    })
    .await;
    let waits: Vec<f64> = seen
        .borrow()
        .iter()
        .filter(|s| text(s, "state") == "reconnecting")
        .map(|s| get(s, "retryIn").as_f64().unwrap())
        .collect();
    assert!(waits.iter().all(|w| (0.0..=1000.0).contains(w)), "{waits:?}");
    client.close();
    assert_eq!(client.state(), "closed");
}

#[wasm_bindgen_test]
fn invalid_input_throws() {
    assert!(RealtimeClient::new("http://x".into(), JsValue::UNDEFINED).is_err());
    let client = RealtimeClient::new(ws_url(), JsValue::UNDEFINED).unwrap();
    let (f, _) = recorder();
    assert!(client.subscribe("repo:nope", f.clone(), JsValue::UNDEFINED).is_err());
    client.close();
    assert!(client.subscribe("repo:a/b", f, JsValue::UNDEFINED).is_err(), "closed client");
}
