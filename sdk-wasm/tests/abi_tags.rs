//! The numbers of the wasm's exports are named on both sides: `export const NAME = N;` in
//! `js/src/abi.js` and `pub(crate) const NAME: u32 = N;` in `src/abi.rs`. This checks that the
//! two lists are the same, name for name and value for value, and that the driver never passes
//! an input tag as a bare number.

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
fn js_and_rust_name_the_same_numbers() {
    let js = consts(&read("js/src/abi.js"), "export const ", " = ");
    let rust = consts(&read("src/abi.rs"), "pub(crate) const ", ": u32 = ");
    assert!(rust.len() >= 26, "abi.rs constants found: {rust:?}");
    assert_eq!(js, rust, "js/src/abi.js and src/abi.rs disagree");
}

#[test]
fn inputs_are_named_not_numbered() {
    for file in ["js/src/driver.js", "js/src/client.js"] {
        let js = read(file);
        for (n, line) in js.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for call in ["input(", "call("] {
                for (i, _) in code.match_indices(call) {
                    let after = &code[i + call.len()..];
                    assert!(
                        !after.starts_with(|c: char| c.is_ascii_digit()),
                        "{file}:{}: an input tag as a bare number: {line}",
                        n + 1
                    );
                }
            }
        }
    }
}
