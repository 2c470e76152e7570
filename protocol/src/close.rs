//! The close-code registry: what each WebSocket close code means for a client.
//!
//! The server closes with these codes and both SDKs (through the session) decide with
//! [`CloseCode::action`] whether to reconnect with backoff, reconnect after a hinted delay, or stop.
//! One table, used on both sides, so a terminal condition (a bad token) never turns into a
//! reconnect loop and a transient one (a deploy, a slow consumer) never strands a client.
//!
//! | code | name | action |
//! |---|---|---|
//! | 1000 | normal | terminal |
//! | 1001 | going away (server shutdown, page leave) | reconnect |
//! | 1002, 1003, 1007, 1008, 1010 | protocol / policy errors | terminal |
//! | 1005, 1006 | no status / abnormal (TCP drop) | reconnect |
//! | 1009 | message too big | terminal |
//! | 1011, 1012, 1014 | server error / restart / bad gateway | reconnect |
//! | 1013 | try again later | reconnect after hint (default 5 s) |
//! | 4000 | client: heartbeat timeout (dead link) | reconnect |
//! | 4001 | unauthenticated (bad token) | terminal |
//! | 4002 | token expired (no new token in time) | reconnect (with a fresh token) |
//! | 4003 | forbidden | terminal |
//! | 4008 | slow consumer (outbound queue full) | reconnect |
//! | 4009 | server: heartbeat timeout | reconnect |
//! | 4029 | rate limited | reconnect after hint (default 10 s) |
//! | 4503 | connection limit / overloaded | reconnect after hint (default 5 s) |
//! | other 3000–3499, 4000–4499 | unknown application code | reconnect |
//! | other 3500–3999, 4500–4999 | unknown application code | terminal |
//! | anything else | | reconnect |
//!
//! A close reason may carry a hint `retry_after_ms=N`, which overrides the default delay of a
//! "reconnect after hint" code (and turns a plain "reconnect" code into a hinted one).

use core::time::Duration;

/// What a client does after the connection closed with a given code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseAction {
    /// Reconnect with jittered exponential backoff.
    Reconnect,
    /// Reconnect after this delay (jitter is still added on top by the session).
    ReconnectAfter(Duration),
    /// Do not reconnect: the condition will not go away by itself.
    Terminal,
}

/// A WebSocket close code with its meaning in this protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CloseCode(pub u16);

impl CloseCode {
    /// 1000: normal closure. Terminal.
    pub const NORMAL: CloseCode = CloseCode(1000);
    /// 1001: the endpoint is going away (server shutdown). Reconnect.
    pub const GOING_AWAY: CloseCode = CloseCode(1001);
    /// 1002: protocol error. Terminal.
    pub const PROTOCOL_ERROR: CloseCode = CloseCode(1002);
    /// 1006: closed without a close frame (TCP drop). Reconnect. Never sent on the wire.
    pub const ABNORMAL: CloseCode = CloseCode(1006);
    /// 1008: policy violation. Terminal.
    pub const POLICY: CloseCode = CloseCode(1008);
    /// 1009: an inbound message exceeded the size limit. Terminal.
    pub const MESSAGE_TOO_BIG: CloseCode = CloseCode(1009);
    /// 1011: internal server error. Reconnect.
    pub const INTERNAL_ERROR: CloseCode = CloseCode(1011);
    /// 1012: service restart. Reconnect.
    pub const SERVICE_RESTART: CloseCode = CloseCode(1012);
    /// 1013: try again later. Reconnect after a hinted delay.
    pub const TRY_AGAIN_LATER: CloseCode = CloseCode(1013);
    /// 4000: the client declared the link dead (no frame within the pong timeout). Reconnect.
    pub const HEARTBEAT_TIMEOUT: CloseCode = CloseCode(4000);
    /// 4001: a bad token (or one already expired when sent). Terminal.
    pub const UNAUTHENTICATED: CloseCode = CloseCode(4001);
    /// 4002: the token expired and no new one came on the open socket. Reconnect: the client
    /// fetches a fresh token first.
    pub const TOKEN_EXPIRED: CloseCode = CloseCode(4002);
    /// 4003: forbidden. Terminal.
    pub const FORBIDDEN: CloseCode = CloseCode(4003);
    /// 4008: slow consumer, the client's outbound queue filled up. Reconnect (and recover).
    pub const SLOW_CONSUMER: CloseCode = CloseCode(4008);
    /// 4009: the server heard no pong from the client in time. Reconnect.
    pub const SERVER_HEARTBEAT_TIMEOUT: CloseCode = CloseCode(4009);
    /// 4029: rate limited. Reconnect after a hinted delay.
    pub const RATE_LIMITED: CloseCode = CloseCode(4029);
    /// 4503: connection limit reached or server overloaded. Reconnect after a hinted delay.
    pub const CONNECTION_LIMIT: CloseCode = CloseCode(4503);

    /// The registry: what a client does after a close with this code and reason.
    ///
    /// ```
    /// use guts_realtime::{CloseAction, CloseCode};
    /// use std::time::Duration;
    /// assert_eq!(CloseCode(4001).action(""), CloseAction::Terminal);
    /// assert_eq!(CloseCode(4008).action(""), CloseAction::Reconnect);
    /// assert_eq!(CloseCode(1001).action(""), CloseAction::Reconnect);
    /// assert_eq!(
    ///     CloseCode(4503).action("busy; retry_after_ms=1500"),
    ///     CloseAction::ReconnectAfter(Duration::from_millis(1500))
    /// );
    /// ```
    pub fn action(self, reason: &str) -> CloseAction {
        let hint = retry_after_hint(reason);
        let base = match self.0 {
            1000 | 1002 | 1003 | 1007 | 1008 | 1009 | 1010 => CloseAction::Terminal,
            1013 | 4503 => CloseAction::ReconnectAfter(Duration::from_secs(5)),
            4029 => CloseAction::ReconnectAfter(Duration::from_secs(10)),
            4001 | 4003 => CloseAction::Terminal,
            4002 => CloseAction::Reconnect,
            3500..=3999 | 4500..=4999 => CloseAction::Terminal,
            _ => CloseAction::Reconnect,
        };
        match (base, hint) {
            (CloseAction::Terminal, _) => CloseAction::Terminal,
            (_, Some(d)) => CloseAction::ReconnectAfter(d),
            (b, None) => b,
        }
    }

    /// Whether a client must not reconnect after this code.
    pub fn is_terminal(self) -> bool {
        self.action("") == CloseAction::Terminal
    }

    /// A short name for logs and state events (`"slow_consumer"`, …).
    pub fn name(self) -> &'static str {
        match self.0 {
            1000 => "normal",
            1001 => "going_away",
            1002 => "protocol_error",
            1003 => "unsupported_data",
            1005 => "no_status",
            1006 => "abnormal",
            1007 => "invalid_payload",
            1008 => "policy",
            1009 => "message_too_big",
            1010 => "extension_required",
            1011 => "internal_error",
            1012 => "service_restart",
            1013 => "try_again_later",
            1014 => "bad_gateway",
            4000 => "heartbeat_timeout",
            4001 => "unauthenticated",
            4002 => "token_expired",
            4003 => "forbidden",
            4008 => "slow_consumer",
            4009 => "server_heartbeat_timeout",
            4029 => "rate_limited",
            4503 => "connection_limit",
            _ => "unknown",
        }
    }
}

/// Parses a `retry_after_ms=N` hint out of a close reason (capped at one hour). `N` is the run of
/// ASCII digits after the first `retry_after_ms=`; none, or more than fits a `u64`, is no hint.
/// (Byte search and digit arithmetic: no `str::find` searcher, no `str::parse`, no panic path.)
pub fn retry_after_hint(reason: &str) -> Option<Duration> {
    const KEY: &[u8] = b"retry_after_ms=";
    let bytes = reason.as_bytes();
    let at = bytes.windows(KEY.len()).position(|w| w == KEY)? + KEY.len();
    let digits = bytes.get(at..)?;
    let n = digits.iter().take_while(|b| b.is_ascii_digit()).count();
    if n == 0 {
        return None;
    }
    let mut ms: u64 = 0;
    for &d in digits.get(..n)? {
        ms = ms.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    Some(Duration::from_millis(ms.min(3_600_000)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The previous implementation (`str::find` + `str::parse`), as the reference.
    fn reference(reason: &str) -> Option<Duration> {
        let rest = &reason[reason.find("retry_after_ms=")? + "retry_after_ms=".len()..];
        let digits: &str = &rest[..rest.bytes().take_while(u8::is_ascii_digit).count()];
        let ms: u64 = digits.parse().ok()?;
        Some(Duration::from_millis(ms.min(3_600_000)))
    }

    #[test]
    fn retry_after_hint_reads_what_the_reference_reads() {
        for reason in [
            "",
            "busy",
            "retry_after_ms=",
            "retry_after_ms=x",
            "retry_after_ms=0",
            "retry_after_ms=1500",
            "busy; retry_after_ms=1500ms",
            "retry_after_ms=7200000",
            "retry_after_ms=18446744073709551615",
            "retry_after_ms=18446744073709551616",
            "retry_after_ms=99999999999999999999999",
            "retry_after_ms=5 retry_after_ms=9",
            "retry_after_ms retry_after_ms=42",
            "é✓ retry_after_ms=250é",
            "retry_after_ms=-5",
            "retry_after_ms=+5",
        ] {
            assert_eq!(retry_after_hint(reason), reference(reason), "{reason:?}");
        }
    }
}
