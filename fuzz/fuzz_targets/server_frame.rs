//! `decode_server_frame` on arbitrary input: never panics; whatever decodes re-encodes to a text
//! that decodes to the same frame, the encoding is stable, and the `Serialize` impl writes the
//! same text as `ServerFrame::encode`.
#![no_main]

use guts_realtime::decode_server_frame;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(frame) = decode_server_frame(text) {
        let encoded = frame.encode();
        let again = decode_server_frame(encoded.as_str())
            .unwrap_or_else(|e| panic!("re-decoding {encoded:?} (from {text:?}) failed: {e}"));
        assert_eq!(again, frame, "decode(encode(f)) != f for {text:?} -> {encoded:?}");
        assert_eq!(again.encode(), encoded, "encoding is not stable for {text:?}");
        assert_eq!(serde_json::to_string(&frame).unwrap(), encoded.as_str());
    }
});
