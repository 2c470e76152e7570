//! Presence in one `EventHub`: the member list's cap, a connection that changes user, a watcher
//! that re-subscribes with and without presence, and the hook a broker is told through.
#![cfg(feature = "hub")]

use guts_realtime::{Channel, ClientReceiver, EventHub, HubConfig, SubscribeOptions};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};

fn drain(rx: &mut ClientReceiver) -> Vec<Value> {
    std::iter::from_fn(|| rx.try_recv().ok())
        .map(|f| serde_json::from_str(f.as_str()).unwrap())
        .collect()
}

const CH: &str = "repo:o/n/prs/1";

fn with_presence() -> SubscribeOptions<'static> {
    SubscribeOptions::new(None, true, None)
}

#[test]
fn the_member_list_is_capped_at_1000_and_says_so() {
    let hub = EventHub::with_config(HubConfig::default().max_connections(1100));
    let mut keep = Vec::new();
    for i in 0..1001 {
        let (c, rx) = hub.connect().unwrap();
        c.set_user(Some(&format!("u{i:04}")));
        hub.subscribe_with(&c, CH, with_presence()).unwrap();
        keep.push((c, rx));
    }
    let (members, truncated) = hub.presence(&Channel::parse(CH).unwrap());
    assert_eq!((members.len(), truncated), (1000, true));
    assert_eq!(members[999].user, "u0999", "the first 1000 by user name");
    let last = drain(&mut keep[1000].1);
    let list = &last[1];
    assert_eq!(
        (list["type"].as_str(), list["truncated"].as_bool()),
        (Some("presence"), Some(true))
    );
    assert_eq!(list["members"].as_array().unwrap().len(), 1000);
    // One leaves: 1000 members, not truncated.
    hub.disconnect(&keep[0].0.id);
    let (members, truncated) = hub.presence(&Channel::parse(CH).unwrap());
    assert_eq!((members.len(), truncated), (1000, false));
}

#[test]
fn a_connection_that_authenticates_as_someone_else_leaves_and_joins() {
    let hub = EventHub::new();
    let (w, mut wrx) = hub.connect().unwrap();
    w.set_user(Some("watcher"));
    hub.subscribe_with(&w, CH, with_presence()).unwrap();
    let (c, mut crx) = hub.connect().unwrap();
    c.set_user(Some("alice"));
    hub.subscribe_with(&c, CH, with_presence()).unwrap();
    drain(&mut wrx);
    drain(&mut crx);
    c.set_user(Some("bob"));
    hub.update_presence_user(&c);
    let want = [
        json!({"type": "leave", "channel": CH, "user": "alice"}),
        json!({"type": "join", "channel": CH, "user": "bob"}),
    ];
    assert_eq!(drain(&mut wrx), want);
    assert_eq!(drain(&mut crx), want, "the connection itself sees its change too");
    // Anonymous now: it leaves and stays a watcher.
    c.set_user(None);
    hub.update_presence_user(&c);
    assert_eq!(drain(&mut wrx), [json!({"type": "leave", "channel": CH, "user": "bob"})]);
    let (members, _) = hub.presence(&Channel::parse(CH).unwrap());
    assert_eq!(members.iter().map(|m| m.user.as_str()).collect::<Vec<_>>(), ["watcher"]);
}

#[test]
fn subscribing_again_with_or_without_presence_joins_or_leaves_once() {
    let hub = EventHub::new();
    let (w, mut wrx) = hub.connect().unwrap();
    w.set_user(Some("watcher"));
    hub.subscribe_with(&w, CH, with_presence()).unwrap();
    let (c, mut crx) = hub.connect().unwrap();
    c.set_user(Some("alice"));
    hub.subscribe(&c, CH, None, None).unwrap();
    assert_eq!(drain(&mut crx).len(), 1, "only `subscribed`: no presence asked");
    hub.subscribe_with(&c, CH, with_presence()).unwrap();
    hub.subscribe_with(&c, CH, with_presence()).unwrap();
    let got = drain(&mut crx);
    assert_eq!(got.iter().filter(|f| f["type"] == "presence").count(), 2);
    hub.subscribe(&c, CH, None, None).unwrap();
    assert_eq!(
        drain(&mut wrx)[2..],
        [
            json!({"type": "join", "channel": CH, "user": "alice"}),
            json!({"type": "leave", "channel": CH, "user": "alice"}),
        ]
    );
    // No longer a watcher: nothing more reaches it.
    let (d, _drx) = hub.connect().unwrap();
    d.set_user(Some("dave"));
    hub.subscribe_with(&d, CH, with_presence()).unwrap();
    assert_eq!(drain(&mut crx), [json!({"type": "subscribed", "channel": CH, "seq": 0})]);
}

#[test]
fn the_hook_sees_every_change_of_this_node_s_counts() {
    let hub = Arc::new(EventHub::new());
    let seen: Arc<Mutex<Vec<(String, String, u32)>>> = Arc::default();
    let log = seen.clone();
    hub.on_presence(move |ch, user, n| log.lock().unwrap().push((ch.to_string(), user.into(), n)));
    let (a1, _r1) = hub.connect().unwrap();
    let (a2, _r2) = hub.connect().unwrap();
    for c in [&a1, &a2] {
        c.set_user(Some("alice"));
        hub.subscribe_with(c, CH, with_presence()).unwrap();
    }
    hub.unsubscribe(&a1, CH).unwrap();
    hub.disconnect(&a2.id);
    let want: Vec<(String, String, u32)> =
        [1, 2, 1, 0].into_iter().map(|n| (CH.to_owned(), "alice".to_owned(), n)).collect();
    assert_eq!(*seen.lock().unwrap(), want);
    assert!(hub.local_presence().is_empty());
}

#[test]
fn remote_counts_join_and_leave_only_while_someone_here_watches() {
    let hub = EventHub::new();
    let ch = Channel::parse(CH).unwrap();
    hub.set_remote_presence(&ch, "zoe", 2); // nobody watches: nothing kept
    let (w, mut wrx) = hub.connect().unwrap();
    hub.subscribe_with(&w, CH, with_presence()).unwrap();
    let list = &drain(&mut wrx)[1];
    assert_eq!(list["members"], json!([]));
    hub.set_remote_presence(&ch, "zoe", 2);
    hub.set_remote_presence(&ch, "zoe", 1);
    hub.sync_remote_presence(&ch, &[("yan".into(), 1)]);
    assert_eq!(
        drain(&mut wrx),
        [
            json!({"type": "join", "channel": CH, "user": "zoe"}),
            json!({"type": "leave", "channel": CH, "user": "zoe"}),
            json!({"type": "join", "channel": CH, "user": "yan"}),
        ]
    );
}
