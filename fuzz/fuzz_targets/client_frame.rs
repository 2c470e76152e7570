//! `decode_client_frame` on arbitrary input: never panics; whatever decodes re-encodes to a text
//! that decodes to the same frame (and encoding is stable); whatever does not decode still gets
//! an `error` reply that is a valid server frame echoing the readable id.
#![no_main]

use guts_realtime::{decode_client_frame, decode_server_frame, RequestId, ServerMessage};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match decode_client_frame(text) {
        Ok(frame) => {
            let encoded = frame.encode();
            let again = decode_client_frame(&encoded).unwrap_or_else(|e| {
                panic!("re-decoding {encoded:?} (from {text:?}) failed: {e:?}")
            });
            assert_eq!(again, frame, "decode(encode(f)) != f for {text:?} -> {encoded:?}");
            assert_eq!(again.encode(), encoded, "encoding is not stable for {text:?}");
            if let Some(RequestId::Str(s)) = &frame.id {
                assert!(s.len() <= RequestId::MAX_LEN);
            }
        }
        Err(e) => {
            if let Some(RequestId::Str(s)) = &e.id {
                assert!(s.len() <= RequestId::MAX_LEN);
            }
            let reply = ServerMessage::error(&e.to_error()).encode_with_id(e.id.as_ref());
            let back = decode_server_frame(reply.as_str())
                .unwrap_or_else(|err| panic!("error reply {reply:?} does not decode: {err}"));
            assert_eq!(back.id, e.id);
            assert_eq!(back.encode(), reply);
        }
    }
});
