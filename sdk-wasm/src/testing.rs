//! Two small exports that let the npm package's tests hold the wasm to the shared wire vectors
//! (`protocol/tests/vectors/`): the client's own encoder (the session's `ClientFrame::encode`) and
//! the driver's own reading of server frames (`decode`). Nothing else uses them.

use crate::decode::{self, Keys};
use alloc::string::String;
use guts_realtime::session::Inbound;
use guts_realtime::{ClientCommand, ClientFrame, RequestId, Since};
use js_sys::Object;
use wasm_bindgen::prelude::*;

use crate::js::field;

fn text(v: &JsValue, key: &str) -> Result<String, JsError> {
    field(v, key)
        .as_string()
        .ok_or_else(|| JsError::new(&crate::js::cat(&[key, " must be a string"])))
}

/// Encodes a client command object (`{type, channel?, token?, since?, id?}`) to the exact text
/// the client sends. Throws for commands the browser client never sends (`publish`).
#[wasm_bindgen(js_name = encodeCommand)]
pub fn encode_command(
    #[wasm_bindgen(unchecked_param_type = "ClientFrame")] value: JsValue,
) -> Result<String, JsError> {
    let command = match text(&value, "type")?.as_str() {
        "subscribe" => ClientCommand::Subscribe { channel: text(&value, "channel")? },
        "unsubscribe" => ClientCommand::Unsubscribe { channel: text(&value, "channel")? },
        "ping" => ClientCommand::Ping,
        "auth" => ClientCommand::Auth { token: text(&value, "token")? },
        "presence" => ClientCommand::Presence { channel: text(&value, "channel")? },
        "history" => ClientCommand::History {
            channel: text(&value, "channel")?,
            limit: field(&value, "limit").as_f64().map(|n| n as u32),
        },
        "signal" => {
            // The session's own encoder of signals, with the data as JSON.stringify writes it.
            let data = js_sys::JSON::stringify(&field(&value, "data"))
                .ok()
                .and_then(|s| s.as_string())
                .unwrap_or_else(|| "null".into());
            let id = request_id(&field(&value, "id"));
            return Ok(guts_realtime::wire::encode_signal(
                &text(&value, "channel")?,
                &text(&value, "event")?,
                &data,
                id.as_ref(),
            ));
        }
        other => {
            return Err(JsError::new(&crate::js::cat(&[
                "not a command this client sends: ",
                other,
            ])))
        }
    };
    let since = field(&value, "since");
    let since = if since.is_object() {
        let seq = field(&since, "seq").as_f64().ok_or_else(|| JsError::new("since.seq"))?;
        Some(Since { seq: seq as u64, epoch: text(&since, "epoch")? })
    } else {
        None
    };
    let id = request_id(&field(&value, "id"));
    let presence = field(&value, "presence").as_bool().unwrap_or(false);
    Ok(ClientFrame { command, since, presence, id }.encode())
}

/// A command's `id` (a number or a string).
fn request_id(id: &JsValue) -> Option<RequestId> {
    match (id.as_f64(), id.as_string()) {
        (Some(n), _) => Some(RequestId::Num(n as u64)),
        (_, Some(s)) => Some(RequestId::Str(s)),
        _ => None,
    }
}

/// What the driver reads from a server frame's text: `{kind, id?, channel?, event?, seq?,
/// recovered?, epoch?, code?, message?, user?}`, where `kind` is the session's view (`"event"`
/// for events and notifications, `"other"` for frames it ignores).
#[wasm_bindgen(js_name = decodeFrame)]
pub fn decode_frame(text: &str) -> JsValue {
    let o = Object::new();
    let set = |k: &str, v: JsValue| {
        let _ = js_sys::Reflect::set(&o, &k.into(), &v);
    };
    let num = |n: Option<u64>| n.map_or(JsValue::UNDEFINED, |n| JsValue::from_f64(n as f64));
    // As the bridge does: what is not JSON reaches `read` as `undefined`.
    let parsed = js_sys::JSON::parse(text).unwrap_or(JsValue::UNDEFINED);
    let (kind, id) = match decode::read(&Keys::new(), parsed) {
        Inbound::Welcome { epoch } => {
            set("epoch", epoch.into());
            ("welcome", None)
        }
        Inbound::Authenticated { id, user, expires_in } => {
            set("user", user.into());
            set("expires_in", num(expires_in));
            ("authenticated", id)
        }
        Inbound::Subscribed { id, channel, seq, recovered } => {
            set("channel", channel.into());
            set("seq", num(seq));
            set("recovered", recovered.map_or(JsValue::UNDEFINED, JsValue::from_bool));
            ("subscribed", id)
        }
        Inbound::Unsubscribed { id, channel, reason } => {
            set("channel", channel.into());
            set("reason", reason.map_or(JsValue::UNDEFINED, JsValue::from));
            ("unsubscribed", id)
        }
        Inbound::Pong { id } => ("pong", id),
        Inbound::Error { id, code, message } => {
            set("code", code.map_or(JsValue::UNDEFINED, |c| c.as_str().into()));
            set("message", message.into());
            ("error", id)
        }
        Inbound::Event { channel, kind, seq, item, .. } => {
            set("channel", channel.into());
            set("event", kind.map_or(JsValue::UNDEFINED, |k| k.wire_name().into()));
            set("seq", num(seq));
            set("item", num(item));
            ("event", None)
        }
        Inbound::Presence { id, channel, members, .. } => {
            set("channel", channel.into());
            let list = js_sys::Array::new();
            for (user, n) in members {
                list.push(&js_sys::Array::of2(&user.into(), &JsValue::from(n)));
            }
            set("members", list.into());
            ("presence", id)
        }
        Inbound::Join { channel, user } => {
            set("channel", channel.into());
            set("user", user.into());
            ("join", None)
        }
        Inbound::Leave { channel, user } => {
            set("channel", channel.into());
            set("user", user.into());
            ("leave", None)
        }
        Inbound::Signal { channel, .. } => {
            set("channel", channel.into());
            ("signal", None)
        }
        Inbound::History { id, .. } => ("history", id),
        Inbound::Other => ("other", None),
    };
    set("kind", kind.into());
    set("id", num(id));
    o.into()
}
