//! Page lifecycle listeners (browsers only; absent in Node): each one forwards to one session
//! input and decides nothing itself.
//!
//! | event | session input |
//! |---|---|
//! | `online` | `handle_network(now, true)`: reconnect now instead of waiting out the backoff |
//! | `offline` | `handle_network(now, false)`: close the socket and wait |
//! | `visibilitychange` → visible, `pageshow` | `check_liveness(now)`: ping at once (timers may have been throttled) or retry now |
//! | `pagehide` | `release(now, "page hidden")`: give the socket up (back/forward cache) |
//!
//! Dropping [`PageListeners`] removes every listener it added.

use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{Document, EventTarget, VisibilityState, Window};

/// What a page event asks of the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PageEvent {
    Online,
    Offline,
    /// Visible again or restored from the back/forward cache.
    Resumed,
    Hidden,
}

type Listener = Closure<dyn FnMut(JsValue)>;

/// The listeners one client added to `window` and `document`.
pub(crate) struct PageListeners {
    window: Window,
    document: Option<Document>,
    added: Vec<(&'static str, bool, Listener)>,
}

impl PageListeners {
    /// Adds the listeners when running in a page (`None` in Node and workers without `window`).
    pub(crate) fn attach(on_event: impl Fn(PageEvent) + Clone + 'static) -> Option<PageListeners> {
        let window = web_sys::window()?;
        let document = window.document();
        let mut me = PageListeners { window, document, added: Vec::new() };
        for (name, ev) in [
            ("online", PageEvent::Online),
            ("offline", PageEvent::Offline),
            ("pageshow", PageEvent::Resumed),
            ("pagehide", PageEvent::Hidden),
        ] {
            let f = on_event.clone();
            me.add(name, false, Closure::new(move |_: JsValue| f(ev)));
        }
        if let Some(doc) = me.document.clone() {
            let f = on_event;
            me.add(
                "visibilitychange",
                true,
                Closure::new(move |_: JsValue| {
                    if doc.visibility_state() == VisibilityState::Visible {
                        f(PageEvent::Resumed)
                    }
                }),
            );
        }
        Some(me)
    }

    fn target(&self, on_document: bool) -> Option<&EventTarget> {
        if on_document {
            self.document.as_ref().map(|d| d.unchecked_ref())
        } else {
            Some(self.window.unchecked_ref())
        }
    }

    fn add(&mut self, name: &'static str, on_document: bool, listener: Listener) {
        if let Some(t) = self.target(on_document) {
            let _ = t.add_event_listener_with_callback(name, listener.as_ref().unchecked_ref());
            self.added.push((name, on_document, listener));
        }
    }
}

impl Drop for PageListeners {
    fn drop(&mut self) {
        for (name, on_document, listener) in std::mem::take(&mut self.added) {
            if let Some(t) = self.target(on_document) {
                let _ =
                    t.remove_event_listener_with_callback(name, listener.as_ref().unchecked_ref());
            }
        }
    }
}
