//! # guts-realtime-wasm
//!
//! The browser SDK of Guts real-time, published to npm as `@guts/realtime`. It is a thin driver
//! of the sans-IO [`Session`] — the same state machine the
//! native SDK drives — around a `WebSocket`, one `setTimeout` and JavaScript callbacks.
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
//! The JS API — the `RealtimeClient` class and subscription handles — is defined in the driver's
//! JS half, `js/bridge.js`: it loads the wasm by itself, keeps the application's listeners, and
//! calls the wasm through each client's one handler; the wasm reports back through one function
//! (`emit`). The bridge also wires socket, timer and page events to the handler.
//!
//! Modules: [`api`] (options and callback objects, with their generated TypeScript types),
//! `driver` (the handler and the I/O loop), `decode` (server frames), `js` (bindings).
#![cfg_attr(not(feature = "std"), no_std)]
#![warn(missing_docs)]
// All of this crate is in the bundle: no formatting macros (clippy.toml). The `ts` derives
// (native only, for the generated TypeScript) format; the bundle never has them.
#![cfg_attr(not(feature = "ts"), warn(clippy::disallowed_macros))]

extern crate alloc;

pub mod api;
mod decode;
mod driver;
mod js;
#[cfg(feature = "vectors")]
mod testing;

use wasm_bindgen::prelude::*;

#[cfg(feature = "vectors")]
pub use testing::{decode_frame, encode_command};

#[wasm_bindgen(typescript_custom_section)]
const TS_TYPES: &str = r#"
export * from "./types.js";
import type { ClientFrame, ClientOptions, StateChange, StateName, SubscriptionStateName, SubscribeHandlers, ErrorInfo, ServerMessage, PresenceMember } from "./types.js";
/** What a subscription callback receives: the `event` or `notification` frame, as `JSON.parse` made it. */
export type EventMessage = Extract<ServerMessage, { type: "event" | "notification" }>;
/** A signal from another subscriber of an item channel, as `onSignal` receives it. */
export type SignalMessage = Extract<ServerMessage, { type: "signal" }>;
/** What `client.history()` resolves to: the `history` frame. */
export type HistoryMessage = Extract<ServerMessage, { type: "history" }>;
/** What `client.presence()` resolves to: the `presence` frame. */
export type PresenceMessage = Extract<ServerMessage, { type: "presence" }>;
/**
 * A connection to a Guts real-time hub that reconnects by itself, resubscribes, recovers missed
 * events (or reports a gap), and never delivers an event twice.
 */
export class RealtimeClient {
  /**
   * Creates the client and starts connecting (on the next microtask, so listeners added right
   * after the constructor see the first state). `url` is the hub's WebSocket URL
   * (`wss://host/ws`). Throws on a URL that is not `ws://` or `wss://` and on a bad option.
   */
  constructor(url: string, options?: ClientOptions);
  /**
   * Subscribes to a channel (`repo:owner/name`, `repo:owner/name/prs`, `…/issues`, `user:name`,
   * `org:name`). `callback` receives every event of the channel once, in order; `handlers` may
   * add `onState` and `onGap`. Works in any state: the subscription is sent (again) on every
   * connect. Throws on an invalid channel, past the subscription limit, or after `close()`.
   */
  subscribe(channel: string, callback: (event: EventMessage) => void, handlers?: SubscribeHandlers): SubscriptionHandle;
  /**
   * Adds a connection-state listener: `{ state, reason, code?, retryIn?, attempt? }` on every
   * change (`connecting`, `authenticating`, `connected`, `reconnecting`, `closed`).
   */
  onState(listener: (state: StateChange) => void): void;
  /** Adds a listener for hub errors that concern no subscription (e.g. `rate_limited`). */
  onError(listener: (error: ErrorInfo) => void): void;
  /**
   * Sends a signal (`event`, with `data`) to the other subscribers of an item channel
   * (`repo:o/n/prs/N`, `repo:o/n/issues/N`), e.g. a typing indicator. Ephemeral: sent only while
   * connected (returns `false` otherwise), never stored or replayed; the hub names the sender. A
   * refusal (`forbidden`, `rate_limited`) reaches `onError`.
   */
  signal(channel: string, event: string, data?: unknown): boolean;
  /** Who is on a channel, without joining its presence. Rejects with an `Error` (`code`). */
  presence(channel: string): Promise<PresenceMessage>;
  /**
   * The last `limit` events of a channel (1 to 100, default 20), oldest first, with the position
   * after them (`seq`, `epoch`): render them, then subscribe to continue with nothing missed or
   * repeated. Rejects with an `Error` (`code`) when refused or not answered within 10 s.
   */
  history(channel: string, limit?: number): Promise<HistoryMessage>;
  /** The current connection state name. */
  readonly state: StateName;
  /**
   * Starts connecting again after the client stopped by itself (a rejected token or a terminal
   * close code left it `closed`). A no-op while running, and after `close()`.
   */
  connect(): void;
  /**
   * Closes the connection for good (code 1000), delivers the final `closed` state, and removes
   * every listener, timer and callback the client holds. Idempotent.
   */
  close(): void;
}
/** One subscription made with `RealtimeClient.subscribe`. */
export interface SubscriptionHandle {
  /** The canonical channel. */
  readonly channel: string;
  /** The current state (`"unsubscribed"` after `unsubscribe()`). */
  readonly state: SubscriptionStateName;
  /** Who is on the channel, by user (empty unless subscribed with presence). */
  readonly members: PresenceMember[];
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

/// Registers the client factory with `js/bridge.js` when the wasm starts (wasm-bindgen runs it
/// at the end of `init()`): from then on `RealtimeClient`s connect at once.
#[wasm_bindgen(start)]
pub fn start() {
    if !STARTED.swap(true, core::sync::atomic::Ordering::Relaxed) {
        driver::factory();
    }
}

/// Whether [`start`] ran (a host that initialises the module without running it, as
/// wasm-bindgen-test does, gets it from the first [`create_client`]).
static STARTED: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);

/// Creates a client: the same as `new RealtimeClient(url, options)`.
///
/// Throws on a URL that is not `ws://` or `wss://` and on a bad option.
#[wasm_bindgen(js_name = createClient, unchecked_return_type = "RealtimeClient")]
pub fn create_client(
    #[wasm_bindgen(unchecked_param_type = "string")] url: JsValue,
    #[wasm_bindgen(unchecked_optional_param_type = "ClientOptions")] options: JsValue,
) -> Result<JsValue, JsValue> {
    if !STARTED.swap(true, core::sync::atomic::Ordering::Relaxed) {
        driver::factory();
    }
    js::construct(&url, &options)
}
