//! Bad input stays harmless at the protocol level (issue "Hardening"): bounded error replies.
#![cfg(feature = "json")]

/// An error reply quotes at most 128 bytes of the input: a 65 520-byte command with an unknown
/// type or a mistyped field comes back as a short error, not as a 131 KB echo.
#[test]
fn an_error_never_quotes_more_than_128_bytes_of_the_input() {
    let big = "x".repeat(65_400);
    for text in [
        format!(r#"{{"type":"{big}"}}"#),
        format!(r#"{{"type":"subscribe","channel":7,"id":"{big}"}}"#),
        format!(r#"{{"type":"subscribe","channel":["{big}"]}}"#),
        format!(r#"{{"type":"ping","since":"{big}"}}"#),
    ] {
        let e = guts_realtime::decode_client_frame(&text).unwrap_err();
        let longest = e.error.split(['`', '"']).map(str::len).max().unwrap_or(0);
        assert!(longest <= 128 + '…'.len_utf8(), "quotes {longest} bytes: {}", &e.error[..200]);
        assert!(e.error.len() < 512, "{} bytes: {}", e.error.len(), &e.error[..200]);
    }
    // Short quotes are kept whole.
    let e = guts_realtime::decode_client_frame(r#"{"type":"dance"}"#).unwrap_err();
    assert!(e.error.contains("`dance`"), "{}", e.error);
}
