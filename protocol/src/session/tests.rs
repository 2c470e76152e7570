//! Unit tests of session inputs that the browser driver relies on: [`Session::release`]
//! (`pagehide`) and its recovery through [`Session::check_liveness`] (`pageshow`).

use super::*;

const MS: Duration = Duration::from_millis(1);

/// A session connected to a pretend hub (welcome answered by hand), with one channel confirmed.
fn connected() -> (Session<u32>, Duration) {
    let mut s: Session<u32> = Session::new(SessionConfig::default());
    s.subscribe("repo:a/b").unwrap();
    let now = Duration::ZERO;
    s.connect(now);
    assert_eq!(s.poll_action(), Some(Action::Connect));
    s.handle_open(now);
    s.handle_frame(now, Inbound::Welcome { epoch: "e1".into() });
    s.handle_frame(
        now,
        Inbound::Subscribed {
            id: Some(1),
            channel: "repo:a/b".into(),
            seq: Some(0),
            recovered: None,
        },
    );
    while s.poll_transmit().is_some() {}
    while s.poll_event().is_some() {}
    assert_eq!(s.state(), &ConnectionState::Connected);
    (s, now)
}

#[test]
fn release_closes_the_socket_and_waits() {
    let (mut s, now) = connected();
    s.release(now, "page hidden");
    assert_eq!(s.poll_action(), Some(Action::Close { code: 1000, reason: "page hidden".into() }));
    assert_eq!(s.poll_action(), None);
    assert!(!s.is_open());
    assert!(matches!(s.state(), ConnectionState::Reconnecting { .. }));
    let reasons: Vec<String> = std::iter::from_fn(|| s.poll_event())
        .filter_map(|e| match e {
            Event::State { reason, .. } => Some(reason),
            _ => None,
        })
        .collect();
    assert_eq!(reasons, ["page hidden"]);
    // A second release (or one while waiting) does nothing.
    s.release(now + MS, "again");
    assert_eq!(s.poll_action(), None);
    assert_eq!(s.poll_event(), None);
}

#[test]
fn check_liveness_after_release_reconnects_at_once_and_resumes() {
    let (mut s, mut now) = connected();
    now += Duration::from_secs(1);
    s.release(now, "page hidden");
    while s.poll_action().is_some() {}
    while s.poll_event().is_some() {}
    now += MS;
    s.check_liveness(now);
    assert_eq!(s.poll_action(), Some(Action::Connect));
    s.handle_open(now);
    let sent: Vec<String> = std::iter::from_fn(|| s.poll_transmit()).collect();
    assert_eq!(
        sent,
        [r#"{"type":"subscribe","channel":"repo:a/b","since":{"seq":0,"epoch":"e1"},"id":2}"#]
    );
}

#[test]
fn release_is_a_no_op_when_idle_or_closed() {
    let mut s: Session<u32> = Session::new(SessionConfig::default());
    s.release(Duration::ZERO, "page hidden");
    assert_eq!(s.poll_action(), None);
    assert_eq!(s.state(), &ConnectionState::Idle);
    let (mut s, now) = connected();
    s.close(now);
    while s.poll_action().is_some() {}
    s.release(now, "page hidden");
    assert_eq!(s.poll_action(), None);
    assert_eq!(s.state(), &ConnectionState::Closed);
}

#[test]
fn offline_still_closes_with_its_own_reason() {
    let (mut s, now) = connected();
    s.handle_network(now, false);
    assert_eq!(
        s.poll_action(),
        Some(Action::Close { code: 1000, reason: "network offline".into() })
    );
}
