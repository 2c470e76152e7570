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

mod streams {
    use guts_realtime::{EventHub, EventKind, HubConfig, RealtimeError};
    use serde_json::json;

    /// 1000 anonymous subscribes to channels nobody publishes on, then unsubscribes: no stream is
    /// left behind (before: all 1000 stayed, forever).
    #[test]
    fn a_stream_left_without_subscribers_or_history_is_freed() {
        let hub = EventHub::with_config(HubConfig::default().max_channels_per_connection(1000));
        let (c, _rx) = hub.connect().unwrap();
        for i in 0..1000 {
            let ch = format!("repo:nobody/r{i}");
            hub.subscribe(&c, &ch, None, None).unwrap();
            hub.unsubscribe(&c, &ch).unwrap();
        }
        assert_eq!(hub.metrics().streams, 0);
        // With history, it stays (recoverable) until the table needs the room.
        let (c, _rx) = hub.connect().unwrap();
        hub.subscribe(&c, "repo:kept/r", None, None).unwrap();
        hub.publish("repo:kept/r", EventKind::Push, json!({})).unwrap();
        hub.unsubscribe(&c, "repo:kept/r").unwrap();
        assert_eq!(hub.metrics().streams, 1);
        // A disconnect frees what it leaves empty too.
        let (d, _rx) = hub.connect().unwrap();
        for i in 0..10 {
            hub.subscribe(&d, &format!("repo:gone/r{i}"), None, None).unwrap();
        }
        hub.disconnect(&d.id);
        assert_eq!(hub.metrics().streams, 1);
    }

    /// Subscribers to made-up channels fill at most half of the table: a publisher to a new
    /// channel is never refused because of them (before: "stream limit reached" for every new
    /// channel once anonymous subscribes had filled the table).
    #[test]
    fn subscribes_to_made_up_channels_never_refuse_a_publisher() {
        let cfg = HubConfig::default().max_streams(100).max_channels_per_connection(1000);
        let hub = EventHub::with_config(cfg);
        let mut clients = Vec::new();
        let mut refused = 0;
        for i in 0..200 {
            let (c, rx) = hub.connect().unwrap();
            match hub.subscribe(&c, &format!("repo:made/up{i}"), None, None) {
                Ok(_) => {}
                Err(RealtimeError::RateLimited(m)) => {
                    assert!(m.contains("stream limit"), "{m}");
                    refused += 1;
                }
                Err(e) => panic!("{e}"),
            }
            clients.push((c, rx));
        }
        assert_eq!(refused, 150, "half the table for subscriber-made streams");
        for i in 0..50 {
            hub.publish(&format!("repo:real/r{i}"), EventKind::Push, json!({})).unwrap();
        }
        assert_eq!(hub.metrics().streams, 100);
        // Full: a new publish evicts the least recently used stream without subscribers.
        hub.publish("repo:real/new", EventKind::Push, json!({})).unwrap();
        assert_eq!(hub.stream_head(&"repo:real/r0".parse().unwrap()), None, "r0 evicted");
        assert!(hub.stream_head(&"repo:real/r1".parse().unwrap()).is_some());
    }

    /// A full table with no stream left without subscribers: a publish to a new channel evicts
    /// the oldest stream made by subscribers alone (they are disconnected: nothing was ever
    /// published there, so they lose no event) instead of being refused.
    #[test]
    fn a_publisher_evicts_streams_made_by_subscribers_before_it_is_refused() {
        let cfg = HubConfig::default().max_streams(10).max_channels_per_connection(100);
        let hub = EventHub::with_config(cfg);
        let (made_up, _rx) = hub.connect().unwrap();
        for i in 0..5 {
            hub.subscribe(&made_up, &format!("repo:made/up{i}"), None, None).unwrap();
        }
        let (reader, _rx) = hub.connect().unwrap();
        for i in 0..5 {
            let ch = format!("repo:real/r{i}");
            hub.publish(&ch, EventKind::Push, json!({})).unwrap();
            hub.subscribe(&reader, &ch, None, None).unwrap();
        }
        assert_eq!(hub.metrics().streams, 10);
        hub.publish("repo:real/new", EventKind::Push, json!({})).unwrap();
        assert!(!made_up.is_open(), "the made-up channels' subscriber reconnects");
        assert!(reader.is_open());
        assert_eq!(hub.metrics().gap_disconnects, 1);
        // Streams with published events and subscribers are never evicted: then it is full.
        let (r2, _rx) = hub.connect().unwrap();
        for i in 0..4 {
            let ch = format!("repo:real/more{i}");
            hub.publish(&ch, EventKind::Push, json!({})).unwrap();
            hub.subscribe(&r2, &ch, None, None).unwrap();
        }
        hub.subscribe(&r2, "repo:real/new", None, None).unwrap();
        let e = hub.publish("repo:real/full", EventKind::Push, json!({})).unwrap_err();
        assert!(matches!(e, RealtimeError::RateLimited(_)), "{e}");
    }

    /// One connection makes at most `max_channels_per_connection` streams by subscribing; what
    /// exists already is not counted.
    #[test]
    fn one_connection_makes_at_most_max_channels_per_connection_streams() {
        let hub = EventHub::with_config(HubConfig::default().max_channels_per_connection(5));
        hub.publish("repo:busy/r", EventKind::Push, json!({})).unwrap();
        let (c, _rx) = hub.connect().unwrap();
        for i in 0..5 {
            hub.subscribe(&c, &format!("repo:quiet/r{i}"), None, None).unwrap();
        }
        let e = hub.subscribe(&c, "repo:quiet/r5", None, None).unwrap_err();
        assert!(matches!(&e, RealtimeError::RateLimited(m) if m.contains("already made 5")), "{e}");
        hub.subscribe(&c, "repo:busy/r", None, None).unwrap();
        // Another connection has its own allowance.
        let (d, _rx) = hub.connect().unwrap();
        hub.subscribe(&d, "repo:quiet/r5", None, None).unwrap();
    }
}
