//! Page lifecycle listeners (where there is a page; none in Node): each event forwards to one
//! session input and decides nothing itself.
//!
//! | event | session input |
//! |---|---|
//! | `online` | `handle_network(now, true)`: reconnect now instead of waiting out the backoff |
//! | `offline` | `handle_network(now, false)`: close the socket and wait |
//! | `visibilitychange` → visible, `pageshow` | `check_liveness(now)`: ping at once (timers may have been throttled) or retry now |
//! | `pagehide` | `release(now, "page hidden")`: give the socket up (back/forward cache) |
//!
//! One JS listener serves every event (it reads `event.type`). Dropping [`PageListeners`] removes
//! it from everything it was added to.

use crate::js;
use wasm_bindgen::prelude::*;

/// What a page event asks of the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PageEvent {
    Online,
    Offline,
    /// Visible again or restored from the back/forward cache.
    Resumed,
    Hidden,
}

/// The events listened to on the global scope (the window).
const GLOBAL_EVENTS: [&str; 4] = ["online", "offline", "pageshow", "pagehide"];
/// The event listened to on `document`.
const DOCUMENT_EVENT: &str = "visibilitychange";

impl PageEvent {
    /// The session input a DOM event stands for (`None`: nothing, e.g. the page became hidden).
    fn of(event: &JsValue) -> Option<PageEvent> {
        let kind = js::field(event, "type").as_string()?;
        match kind.as_str() {
            "online" => Some(PageEvent::Online),
            "offline" => Some(PageEvent::Offline),
            "pageshow" => Some(PageEvent::Resumed),
            "pagehide" => Some(PageEvent::Hidden),
            // The target is `document`.
            DOCUMENT_EVENT => {
                (js::field(&js::field(event, "target"), "visibilityState").as_string().as_deref()
                    == Some("visible"))
                .then_some(PageEvent::Resumed)
            }
            _ => None,
        }
    }
}

/// The listener one client added to the global scope and `document`.
pub(crate) struct PageListeners {
    listener: Closure<dyn FnMut(JsValue)>,
    on_document: bool,
}

impl PageListeners {
    /// Adds the listener where there is a page (`None` in Node, where the global scope is no
    /// event target).
    pub(crate) fn attach(on_event: impl Fn(PageEvent) + 'static) -> Option<PageListeners> {
        let listener = Closure::<dyn FnMut(JsValue)>::new(move |ev: JsValue| {
            if let Some(ev) = PageEvent::of(&ev) {
                on_event(ev);
            }
        });
        let mut me = PageListeners { listener, on_document: false };
        let f: &JsValue = me.listener.as_ref();
        for name in GLOBAL_EVENTS {
            // Dropping `me` removes whatever was added.
            js::add_global_listener(name, f).ok()?;
        }
        me.on_document = js::add_document_listener(DOCUMENT_EVENT, f).is_ok();
        Some(me)
    }
}

impl Drop for PageListeners {
    fn drop(&mut self) {
        let f: &JsValue = self.listener.as_ref();
        for name in GLOBAL_EVENTS {
            let _ = js::remove_global_listener(name, f);
        }
        if self.on_document {
            let _ = js::remove_document_listener(DOCUMENT_EVENT, f);
        }
    }
}
