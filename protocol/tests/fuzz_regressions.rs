//! Inputs found by the fuzz targets in `fuzz/` (see `docs/reliability.md`), kept as regression
//! tests: each must decode, and re-encoding must give a frame that decodes to the same value.
#![cfg(feature = "json")]

use guts_realtime::{decode_client_frame, decode_server_frame};

/// `fuzz/artifacts/server_frame/crash-85cc8af20ffd44afafaf6c24049f1cbdd5a842ad`: a float in
/// `data` with more digits than an f64 holds. serde_json's default float parser is
/// best-effort (it may be off by one ulp), so decode → encode → decode changed the number:
/// `3333313333333e-083` decoded to `3.3333133333329998e-71`, which decoded to
/// `3.333313333333e-71`. Payload numbers drift on every hop (publisher → hub → SDK).
///
/// Fixed by enabling serde_json's `float_roundtrip` feature (correctly rounded parsing) for the
/// whole workspace.
#[test]
fn long_floats_in_data_survive_a_round_trip() {
    let server = r#"{"type":"event","channel":"ro","event":"pr_opened","data":{"number":3333313333333e-083,"title":"x"},"timestamp":1703145601,"event_id":"ev-43","seq":43}"#;
    let f = decode_server_frame(server).unwrap();
    let again = decode_server_frame(f.encode().as_str()).unwrap();
    assert_eq!(again, f, "server frame: {}", f.encode());

    for number in [
        "3333313333333e-083",
        "183290698.45785675909658164923",
        "0.8204724074003728306236472762e-194",
    ] {
        let client = format!(
            r#"{{"type":"publish","channel":"repo:a/b","event":"push","data":{{"x":{number}}}}}"#
        );
        let f = decode_client_frame(&client).unwrap();
        let again = decode_client_frame(&f.encode()).unwrap();
        assert_eq!(again, f, "client frame: {}", f.encode());
        // And the value is the correctly rounded one.
        let want: f64 = number.parse().unwrap();
        let guts_realtime::ClientCommand::Publish { data, .. } = &f.command else { panic!() };
        assert_eq!(data["x"].as_f64(), Some(want), "{number}");
    }
}
