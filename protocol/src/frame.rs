//! [`Frame`]: one encoded JSON text frame, shared by every recipient, and the tiny JSON writer
//! ([`push_u64`], [`push_json_str`]) used to encode client commands without serde_json.

use crate::prelude::*;
use bytes::Bytes;
use core::fmt;

/// An encoded JSON text frame. Cloning shares the bytes (a reference-count increment), so an
/// event serialized once reaches every subscriber without another allocation.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Frame(Bytes);

impl Frame {
    /// Wraps a string.
    pub fn from_string(text: String) -> Frame {
        Frame(Bytes::from(text))
    }

    /// A frame from static text.
    pub const fn from_static(text: &'static str) -> Frame {
        Frame(Bytes::from_static(text.as_bytes()))
    }

    /// The JSON text.
    pub fn as_str(&self) -> &str {
        // Only ever built from `String`/`&'static str`, so always UTF-8.
        core::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// The shared bytes (UTF-8).
    pub fn bytes(&self) -> &Bytes {
        &self.0
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the frame is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<String> for Frame {
    fn from(s: String) -> Frame {
        Frame::from_string(s)
    }
}

impl AsRef<str> for Frame {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl PartialEq<str> for Frame {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Frame {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// The parts one after the other (what `parts.concat()` makes, without `join`'s generic code:
/// this runs in the browser SDK's wasm, where code size counts).
pub(crate) fn cat(parts: &[&str]) -> String {
    let mut out = String::with_capacity(parts.iter().map(|p| p.len()).sum());
    for p in parts {
        out.push_str(p);
    }
    out
}

/// Appends the decimal digits of `n` (what `n.to_string()` writes, without `core::fmt`: the
/// browser SDK compiles this crate to wasm, where the formatting machinery costs kilobytes).
pub fn push_u64(out: &mut String, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for &d in &digits[i..] {
        out.push(char::from(d));
    }
}

/// Appends `s` as a JSON string literal (quotes and escapes as serde_json writes them).
pub fn push_json_str(out: &mut String, s: &str) {
    out.push('"');
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        let esc: Option<&str> = match b {
            b'"' => Some("\\\""),
            b'\\' => Some("\\\\"),
            b'\n' => Some("\\n"),
            b'\r' => Some("\\r"),
            b'\t' => Some("\\t"),
            0x08 => Some("\\b"),
            0x0c => Some("\\f"),
            0..=0x1f => None,
            _ => continue,
        };
        // `get`, not indexing: `start` and `i` sit on ASCII bytes, and no panic path is compiled in.
        out.push_str(s.get(start..i).unwrap_or_default());
        match esc {
            Some(e) => out.push_str(e),
            None => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.push_str("\\u00");
                out.push(HEX[(b >> 4) as usize] as char);
                out.push(HEX[(b & 0xf) as usize] as char);
            }
        }
        start = i + 1;
    }
    out.push_str(s.get(start..).unwrap_or_default());
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_u64_writes_what_to_string_writes() {
        for n in [0, 1, 9, 10, 99, 100, 4001, 65535, 1 << 53, u64::MAX - 1, u64::MAX] {
            let mut s = String::from("x");
            push_u64(&mut s, n);
            assert_eq!(s, format!("x{n}"));
        }
    }

    #[test]
    fn push_json_str_escapes_as_serde_json() {
        for s in
            ["", "plain", "q\"uote", "back\\slash", "nl\n cr\r tab\t", "\u{1}\u{1f}\u{7f}", "é✓"]
        {
            let mut out = String::new();
            push_json_str(&mut out, s);
            assert_eq!(out, serde_json::to_string(s).unwrap());
        }
    }
}
