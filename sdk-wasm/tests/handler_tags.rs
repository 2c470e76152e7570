//! The tags of a client's handler `h(tag, a, b)` are named on both sides of the JS↔wasm bridge:
//! `const NAME = N;` in `js/bridge.js` and `pub(crate) const NAME: u32 = N;` in `src/driver.rs`.
//! This checks that the two lists are the same, name for name and value for value, and that the
//! bridge never calls the handler with a bare number.

use std::collections::BTreeMap;

fn read(path: &str) -> String {
    std::fs::read_to_string(format!("{}/{path}", env!("CARGO_MANIFEST_DIR")))
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// `NAME = value` pairs of the lines that start with `prefix`, up to `sep`.
fn consts(text: &str, prefix: &str, sep: &str) -> BTreeMap<String, u32> {
    text.lines()
        .filter_map(|l| l.trim_start().strip_prefix(prefix))
        .filter_map(|rest| {
            let (name, value) = rest.split_once(sep)?;
            let value = value.trim_start().split(';').next()?.trim();
            Some((name.trim().to_owned(), value.parse().ok()?))
        })
        .collect()
}

#[test]
fn bridge_and_driver_name_the_same_tags() {
    let js = consts(&read("js/bridge.js"), "const ", " = ");
    let rust = consts(&read("src/driver.rs"), "pub(crate) const ", ": u32 = ");
    assert!(rust.len() >= 18, "driver tags found: {rust:?}");
    assert_eq!(js, rust, "js/bridge.js and src/driver.rs disagree");
    let values: std::collections::BTreeSet<_> = rust.values().collect();
    assert_eq!(values.len(), rust.len(), "two tags share a value: {rust:?}");
}

#[test]
fn the_bridge_calls_the_handler_by_name_only() {
    let js = read("js/bridge.js");
    for (n, line) in js.lines().enumerate() {
        let code = line.split("//").next().unwrap_or("");
        for call in ["h(", "this[H]("] {
            for (i, _) in code.match_indices(call) {
                let after = &code[i + call.len()..];
                assert!(
                    !after.starts_with(|c: char| c.is_ascii_digit()),
                    "js/bridge.js:{}: handler called with a bare number: {line}",
                    n + 1
                );
            }
        }
    }
}
