//! # guts-realtime-wasm
//!
//! The browser SDK of Guts real-time, published to npm as `@guts/realtime`. It is a thin driver
//! of the sans-IO [`Session`] — the same state machine the
//! native SDK drives — around a `web_sys::WebSocket`, one `setTimeout` and JavaScript callbacks.
//! Connect, auth, heartbeat, backoff, resubscribe, recovery, dedupe and gaps are all the
//! session's; this crate only moves inputs and outputs.
//!
//! ```ts
//! import init, { RealtimeClient } from "@guts/realtime";
//! await init();                                  // no-op in Node
//! const client = new RealtimeClient("wss://host/ws", { token: async () => fetchToken() });
//! client.onState((s) => console.log(s.state, s.reason, s.retryIn));
//! const sub = client.subscribe("repo:alice/app", (ev) => render(ev), { onGap: () => refetch() });
//! sub.unsubscribe();
//! client.close();
//! ```
//!
//! Frames are decoded by the browser's `JSON.parse` (module `decode`); the object it makes is what
//! the application callback receives. No serde_json in the wasm: the bundle stays small.
//!
//! Modules: [`api`] (options and callback objects, with their generated TypeScript types),
//! `driver` (the I/O loop), `decode` (server frames), `js` (bindings, including the driver's JS
//! half `js/bridge.js`: socket and page wiring, options, callback objects).
#![cfg_attr(not(feature = "std"), no_std)]
#![warn(missing_docs)]

extern crate alloc;

pub mod api;
mod decode;
mod driver;
mod js;
#[cfg(feature = "vectors")]
mod testing;

use alloc::rc::Rc;
use alloc::string::String;
use api::{ClientOptions, StateChange};
use driver::{now, pump, Inner};
use guts_realtime::session::Session;
use js_sys::Function;
use wasm_bindgen::prelude::*;

#[cfg(feature = "vectors")]
pub use testing::{decode_frame, encode_command};

#[wasm_bindgen(typescript_custom_section)]
const TS_TYPES: &str = r#"
export * from "./types.js";
import type { ClientFrame, ClientOptions, StateChange, StateName, SubscriptionStateName, SubscribeHandlers, ErrorInfo, ServerMessage } from "./types.js";
/** What a subscription callback receives: the `event` or `notification` frame, as `JSON.parse` made it. */
export type EventMessage = Extract<ServerMessage, { type: "event" | "notification" }>;
/** One subscription made with `RealtimeClient.subscribe`. */
export interface SubscriptionHandle {
  /** The canonical channel. */
  readonly channel: string;
  /** The current state (`"unsubscribed"` after `unsubscribe()`). */
  readonly state: SubscriptionStateName;
  /**
   * Stops this subscription: its callbacks are not called again (the final `unsubscribed` state
   * aside). The channel is unsubscribed at the hub when no other handle holds it. Idempotent.
   */
  unsubscribe(): void;
}
"#;

/// Without feature `std` (the npm bundle: `--no-default-features`) nothing links the standard
/// library, so this crate provides the panic handler: a trap, with no message formatting (the
/// bundle carries no `core::fmt`). Panics are bugs; `panic = "abort"` traps the same way.
#[cfg(all(target_arch = "wasm32", not(feature = "std")))]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    core::arch::wasm32::unreachable()
}

/// The allocator: lol_alloc's free list (single-threaded, as wasm32-unknown-unknown is).
#[cfg(target_arch = "wasm32")]
#[global_allocator]
static ALLOC: lol_alloc::AssumeSingleThreaded<lol_alloc::FreeListAllocator> =
    // SAFETY: wasm32-unknown-unknown without the atomics feature has one thread.
    unsafe { lol_alloc::AssumeSingleThreaded::new(lol_alloc::FreeListAllocator::new()) };

/// A JS `Error`. Messages are static text or built by concatenation: nothing in the wasm
/// formats with `core::fmt` (it would cost kilobytes of the bundle).
fn js_error(message: &str) -> JsValue {
    JsError::new(message).into()
}

/// A connection to a Guts real-time hub that reconnects by itself, resubscribes, recovers
/// missed events (or reports a gap), and never delivers an event twice.
#[wasm_bindgen]
pub struct RealtimeClient {
    inner: Rc<Inner>,
}

#[wasm_bindgen]
impl RealtimeClient {
    /// Creates the client and starts connecting (on the next microtask, so listeners added
    /// right after the constructor see the first state). `url` is the hub's WebSocket URL
    /// (`wss://host/ws`).
    #[wasm_bindgen(constructor)]
    pub fn new(
        url: String,
        #[wasm_bindgen(unchecked_optional_param_type = "ClientOptions")] options: JsValue,
    ) -> Result<RealtimeClient, JsValue> {
        if !(url.starts_with("ws://") || url.starts_with("wss://")) {
            return Err(js_error("url must start with ws:// or wss://"));
        }
        let (cfg, token) = ClientOptions::from_js(&options)?;
        let inner = Inner::new(url, Session::new(cfg), token);
        inner.start();
        Ok(RealtimeClient { inner })
    }

    /// Subscribes to a channel (`repo:owner/name`, `repo:owner/name/prs`, `…/issues`,
    /// `user:name`, `org:name`). `callback` receives every event of the channel once, in order;
    /// `handlers` may add `onState` and `onGap`. Works in any state: the subscription is sent
    /// (again) on every connect.
    ///
    /// Throws on an invalid channel, past the subscription limit, or after `close()`.
    #[wasm_bindgen(unchecked_return_type = "SubscriptionHandle")]
    pub fn subscribe(
        &self,
        channel: &str,
        #[wasm_bindgen(unchecked_param_type = "(event: EventMessage) => void")] callback: Function,
        #[wasm_bindgen(unchecked_optional_param_type = "SubscribeHandlers")] handlers: JsValue,
    ) -> Result<JsValue, JsValue> {
        if self.inner.closed.get() {
            return Err(js_error("client closed"));
        }
        let handlers = js::handlers(&callback, &handlers)?;
        let sub = self.inner.session.borrow_mut().subscribe(channel);
        let sub = sub.map_err(|e| js_error(&e.message()))?;
        self.inner.callbacks.borrow_mut().add_sub(sub, handlers);
        pump(&self.inner);
        // (A valid channel is its own canonical form.)
        let h = self.inner.io.borrow().handler.clone();
        Ok(js::handle(&h, sub.0 as f64, channel))
    }

    /// Adds a connection-state listener: `{ state, reason, code?, retryIn?, attempt? }` on every
    /// change (`connecting`, `authenticating`, `connected`, `reconnecting`, `closed`).
    #[wasm_bindgen(js_name = onState)]
    pub fn on_state(
        &self,
        #[wasm_bindgen(unchecked_param_type = "(state: StateChange) => void")] listener: Function,
    ) {
        if !self.inner.closed.get() {
            self.inner.callbacks.borrow_mut().state.push(&listener);
        }
    }

    /// Adds a listener for hub errors that concern no subscription (e.g. `rate_limited`).
    #[wasm_bindgen(js_name = onError)]
    pub fn on_error(
        &self,
        #[wasm_bindgen(unchecked_param_type = "(error: ErrorInfo) => void")] listener: Function,
    ) {
        if !self.inner.closed.get() {
            self.inner.callbacks.borrow_mut().error.push(&listener);
        }
    }

    /// The current connection state name.
    #[wasm_bindgen(getter, unchecked_return_type = "StateName")]
    pub fn state(&self) -> JsValue {
        let s = self.inner.session.borrow();
        StateChange::new(s.state(), String::new(), None).state.as_str().into()
    }

    /// Starts connecting again after the client stopped by itself (a rejected token or a
    /// terminal close code left it `closed`). A no-op while running, and after `close()`.
    pub fn connect(&self) {
        if !self.inner.closed.get() {
            self.inner.session.borrow_mut().connect(now());
            pump(&self.inner);
        }
    }

    /// Closes the connection for good (code 1000), delivers the final `closed` state, and
    /// removes every listener, timer and callback the client holds. Idempotent.
    pub fn close(&self) {
        if self.inner.closed.replace(true) {
            return;
        }
        self.inner.session.borrow_mut().close(now());
        pump(&self.inner);
    }
}
