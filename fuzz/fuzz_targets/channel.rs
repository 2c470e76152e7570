//! `Channel::parse` on arbitrary input: never panics; errors are `InvalidChannel`; an accepted
//! string is already canonical (`to_string` gives it back) and parses back to the same channel;
//! routing is consistent (every channel `routes` names receives the event).
#![no_main]

use guts_realtime::{Channel, EventKind, RealtimeError};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    match Channel::parse(s) {
        Ok(c) => {
            let shown = c.to_string();
            assert_eq!(Channel::parse(&shown).unwrap(), c, "parse(display(c)) != c for {s:?}");
            assert_eq!(shown, s, "an accepted channel is not canonical");
            for kind in [
                None,
                Some(EventKind::Push),
                Some(EventKind::PrOpened),
                Some(EventKind::IssueClosed),
            ] {
                let routes: Vec<Channel> = c.routes(kind).collect();
                assert_eq!(routes[0], c);
                for r in &routes {
                    assert!(
                        r.receives(&c, kind),
                        "{r} is routed {kind:?} on {c} but does not receive it"
                    );
                }
                assert!(routes.len() <= 2);
            }
        }
        Err(RealtimeError::InvalidChannel(_)) => {}
        Err(e) => panic!("unexpected error {e:?} for {s:?}"),
    }
});
