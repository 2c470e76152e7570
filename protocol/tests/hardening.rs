//! Bad input stays harmless at the protocol level (issue "Hardening"): bounded error replies.
#![cfg(feature = "json")]

/// An error reply quotes at most 128 bytes of the input: a 65 520-byte command with an unknown
/// type or a mistyped field comes back as a short error, not as a 131 KB echo.
#[test]
fn an_error_never_quotes_more_than_128_bytes_of_the_input() {
    let big = "x".repeat(65_400);
    for (text, plain) in [
        (format!(r#"{{"type":"{big}"}}"#), true),
        (format!(r#"{{"type":"subscribe","channel":7,"id":"{big}"}}"#), true),
        (format!(r#"{{"type":"subscribe","channel":["{big}"]}}"#), true),
        (format!(r#"{{"type":"ping","since":"{big}"}}"#), true),
        // A quote character inside the input ends serde's quote early: the length bound holds.
        (format!(r#"{{"type":"a"{big}"}}"#), false),
        (format!(r#"{{"type":"a`{big}"}}"#), false),
        (format!(r#"{{"type":"ping","since":"\"{big}"}}"#), false),
    ] {
        let e = guts_realtime::decode_client_frame(&text).unwrap_err();
        let head = &e.error[..e.error.floor_char_boundary(200)];
        assert!(e.error.len() <= 2 * 128 + 64 + 3, "{} bytes: {head}", e.error.len());
        if plain {
            let longest = e.error.split(['`', '"']).map(str::len).max().unwrap_or(0);
            assert!(longest <= 128 + '…'.len_utf8(), "quotes {longest} bytes: {head}");
        }
    }
    // Short quotes are kept whole.
    let e = guts_realtime::decode_client_frame(r#"{"type":"dance"}"#).unwrap_err();
    assert!(e.error.contains("`dance`"), "{}", e.error);
}
