//! # guts-realtime-wasm
//!
//! The browser SDK of Guts real-time, published to npm as `@guts/realtime`: the sans-IO
//! [`Session`](guts_realtime::session::Session) — the same state machine the native SDK drives —
//! compiled to wasm, and a driver in JavaScript around it (`js/`): a `WebSocket`, one
//! `setTimeout`, the token provider, the page's lifecycle and the application's callbacks.
//! Connect, auth, heartbeat, backoff, resubscribe, recovery, dedupe, gaps and presence are all
//! the session's; the driver only moves bytes and arms the timer.
//!
//! ```ts
//! import { RealtimeClient } from "@guts/realtime";
//! const client = new RealtimeClient("wss://host/ws", { token: async () => fetchToken() });
//! client.onState((s) => console.log(s.state, s.reason, s.retryIn));
//! const sub = client.subscribe("repo:alice/app", (ev) => render(ev), { onGap: () => refetch() });
//! sub.unsubscribe();
//! client.close();
//! ```
//!
//! The wasm imports nothing and exports a few plain functions (module `abi`, built for wasm32 only); frames are
//! decoded by the browser's `JSON.parse` in the driver, which passes the session the fields it
//! needs and hands the application the object `JSON.parse` made. No wasm-bindgen and no
//! serde_json in the bundle: it stays small.
//!
//! Modules: `abi` (the exports; wasm32 only), [`api`] (the options and callback objects, with their
//! generated TypeScript types).
#![cfg_attr(not(feature = "std"), no_std)]
#![warn(missing_docs)]
// All of this crate is in the bundle: no formatting macros (clippy.toml). The `ts` derives
// (native only, for the generated TypeScript) format; the bundle never has them.
#![cfg_attr(not(feature = "ts"), warn(clippy::disallowed_macros))]

extern crate alloc;

#[cfg(target_arch = "wasm32")]
pub mod abi;
pub mod api;

/// What the `std` prelude gives, for the `no_std` build.
#[allow(unused_imports)]
mod prelude {
    pub(crate) use alloc::borrow::ToOwned;
    pub(crate) use alloc::boxed::Box;
    pub(crate) use alloc::string::String;
    pub(crate) use alloc::vec::Vec;
}

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
