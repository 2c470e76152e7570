//! Server frames → the session's [`Inbound`] view, without serde: the browser's `JSON.parse` makes
//! the object, and only the fields the session needs are read (`type`, `id`, `channel`, `event`,
//! `seq`, `recovered`, `epoch`, `code`, `message`, `user`, `expires_in`, `reason`, `members`,
//! an event's `data` item). Events keep the parsed object itself as
//! their payload: that is what the application callback receives.

use crate::js;
use alloc::vec::Vec;
use guts_realtime::session::Inbound;
use guts_realtime::{ErrorCode, EventKind};
use wasm_bindgen::JsValue;

/// The property names, made into JS strings once per client instead of once per frame.
pub(crate) struct Keys {
    ty: JsValue,
    id: JsValue,
    channel: JsValue,
    event: JsValue,
    seq: JsValue,
    recovered: JsValue,
    epoch: JsValue,
    code: JsValue,
    message: JsValue,
    user: JsValue,
    data: JsValue,
    /// `number`, `pr_number`, `parent_number`: where an event's data names its item.
    items: [JsValue; 3],
    /// The value `"event"`: the type of almost every frame, recognised without copying it.
    event_type: JsValue,
}

impl Keys {
    pub(crate) fn new() -> Keys {
        let k = JsValue::from_str;
        Keys {
            ty: k("type"),
            id: k("id"),
            channel: k("channel"),
            event: k("event"),
            seq: k("seq"),
            recovered: k("recovered"),
            epoch: k("epoch"),
            code: k("code"),
            message: k("message"),
            user: k("user"),
            data: k("data"),
            items: [k("number"), k("pr_number"), k("parent_number")],
            event_type: k("event"),
        }
    }
}

/// A JSON number that is a non-negative integer (ids, seqs).
fn uint(v: JsValue) -> Option<u64> {
    let f = v.as_f64()?;
    // (`f64::fract` is std-only: the cast round trip is exact for integers in range.)
    ((0.0..=9_007_199_254_740_992.0).contains(&f) && (f as u64) as f64 == f).then_some(f as u64)
}

/// Reads the session's fields of a frame parsed by `JSON.parse` (in the bridge). Anything that
/// is not a frame this client understands (not JSON, not an object, an unknown `type`, a missing
/// field) becomes [`Inbound::Other`]: it still proves the link is alive, and is otherwise
/// ignored.
pub(crate) fn read(k: &Keys, obj: JsValue) -> Inbound<JsValue> {
    if !obj.is_object() {
        return Inbound::Other;
    }
    let get = |key: &JsValue| js::get(&obj, key);
    let text = |key: &JsValue| get(key).as_string();
    let ty = get(&k.ty);
    if js::same(&ty, &k.event_type) {
        return event(k, obj, true);
    }
    let Some(ty) = ty.as_string() else { return Inbound::Other };
    let id = || uint(get(&k.id));
    match ty.as_str() {
        "notification" => event(k, obj, false),
        "welcome" => Inbound::Welcome { epoch: text(&k.epoch).unwrap_or_default() },
        "authenticated" => Inbound::Authenticated {
            id: id(),
            user: text(&k.user).unwrap_or_default(),
            expires_in: uint(get(&JsValue::from_str("expires_in"))),
        },
        "subscribed" => match text(&k.channel) {
            Some(channel) => Inbound::Subscribed {
                id: id(),
                channel,
                seq: uint(get(&k.seq)),
                recovered: get(&k.recovered).as_bool(),
            },
            None => Inbound::Other,
        },
        "unsubscribed" => match text(&k.channel) {
            Some(channel) => {
                let reason = text(&JsValue::from_str("reason"));
                Inbound::Unsubscribed { id: id(), channel, reason }
            }
            None => Inbound::Other,
        },
        "pong" => Inbound::Pong { id: id() },
        "error" => Inbound::Error {
            id: id(),
            code: text(&k.code).as_deref().and_then(ErrorCode::from_wire),
            message: text(&k.message).unwrap_or_default(),
        },
        "presence" => match text(&k.channel) {
            Some(channel) => {
                let list = get(&JsValue::from_str("members"));
                let mut members = Vec::new();
                for i in 0..uint(js::get(&list, &JsValue::from_str("length"))).unwrap_or(0) {
                    let m = js::get(&list, &JsValue::from_f64(i as f64));
                    let user = js::get(&m, &k.user).as_string();
                    let n = uint(js::get(&m, &JsValue::from_str("connections")));
                    if let (Some(user), Some(n)) = (user, n) {
                        members.push((user, n as u32));
                    }
                }
                Inbound::Presence { id: id(), channel, members, payload: obj }
            }
            None => Inbound::Other,
        },
        "join" | "leave" => match (text(&k.channel), text(&k.user)) {
            (Some(channel), Some(user)) if ty == "join" => Inbound::Join { channel, user },
            (Some(channel), Some(user)) => Inbound::Leave { channel, user },
            _ => Inbound::Other,
        },
        "signal" => match text(&k.channel) {
            Some(channel) => Inbound::Signal { channel, payload: obj },
            None => Inbound::Other,
        },
        "history" => Inbound::History { id: id(), payload: obj },
        _ => Inbound::Other,
    }
}

/// An `event` (with its kind) or `notification` frame: the fields routing and dedupe need.
fn event(k: &Keys, obj: JsValue, with_kind: bool) -> Inbound<JsValue> {
    let text = |key: &JsValue| js::get(&obj, key).as_string();
    let kind = if with_kind {
        match text(&k.event).as_deref().and_then(EventKind::from_wire) {
            Some(kind) => Some(kind),
            None => return Inbound::Other,
        }
    } else {
        None
    };
    let (Some(channel), seq) = (text(&k.channel), uint(js::get(&obj, &k.seq))) else {
        return Inbound::Other;
    };
    // The item the data names (`item_of`): `number`, else `pr_number`, else `parent_number`.
    let data = js::get(&obj, &k.data);
    let item = if data.is_object() {
        k.items.iter().find_map(|key| uint(js::get(&data, key)))
    } else {
        None
    };
    Inbound::Event { channel, kind, seq, item, payload: obj }
}
