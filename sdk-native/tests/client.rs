//! The native client against the real server on 127.0.0.1: stream items, the Lagged policy,
//! unsubscribe on drop, close, auth and shared use from many tasks.

#[path = "../server/tests/server_support/mod.rs"]
mod server_support;

use futures_util::StreamExt;
use guts_realtime_native::client::{ConnectionState, Item, StateInfo};
use guts_realtime_native::{Client, Error, Subscription};
use serde_json::json;
use server_support::{exp_in, mint, TestServer};
use std::time::Duration;
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(10);

async fn next(sub: &mut Subscription) -> Item {
    timeout(WAIT, sub.next()).await.expect("item in time").expect("stream open")
}

async fn until_subscribed(sub: &mut Subscription) {
    loop {
        if let Item::Subscribed { .. } = next(sub).await {
            return;
        }
    }
}

#[tokio::test]
async fn events_arrive_typed_and_in_order() {
    let server = TestServer::default().await;
    let client = Client::builder(server.ws_url()).connect().unwrap();
    let mut sub = client.subscribe("repo:native/app").await.unwrap();
    assert_eq!(sub.channel(), "repo:native/app");
    until_subscribed(&mut sub).await;
    let a = server.publish("repo:native/app", "pr_opened", json!({"number": 1})).await;
    let b = server.publish("repo:native/app", "push", json!({})).await;
    for want in [a, b] {
        match next(&mut sub).await {
            Item::Event(e) => {
                assert_eq!(e.seq, Some(want));
                assert_eq!(e.channel, "repo:native/app");
            }
            other => panic!("{other:?}"),
        }
    }
    client.close().await;
    assert!(timeout(WAIT, sub.next()).await.unwrap().is_none(), "close ends the streams");
}

#[tokio::test]
async fn a_slow_application_gets_lagged_at_the_place_of_the_loss() {
    let server = TestServer::default().await;
    let client = Client::builder(server.ws_url()).buffer(4).connect().unwrap();
    let mut sub = client.subscribe("repo:native/lag").await.unwrap();
    until_subscribed(&mut sub).await;
    let mut seqs = Vec::new();
    for i in 0..10 {
        seqs.push(server.publish("repo:native/lag", "push", json!({ "i": i })).await);
    }
    // Let every frame reach the client before reading anything.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut got = Vec::new();
    for _ in 0..5 {
        got.push(match next(&mut sub).await {
            Item::Event(e) => format!("event {}", e.seq.unwrap()),
            Item::Lagged(n) => format!("lagged {n}"),
            other => format!("{other:?}"),
        });
    }
    let want: Vec<String> =
        seqs[..4].iter().map(|s| format!("event {s}")).chain(["lagged 6".to_owned()]).collect();
    assert_eq!(got, want);
    // Delivery goes on after the loss.
    let s = server.publish("repo:native/lag", "push", json!({})).await;
    assert!(matches!(next(&mut sub).await, Item::Event(e) if e.seq == Some(s)));
}

#[tokio::test]
async fn dropping_a_subscription_unsubscribes() {
    let server = TestServer::default().await;
    let client = Client::builder(server.ws_url()).connect().unwrap();
    let mut sub = client.subscribe("repo:native/drop").await.unwrap();
    until_subscribed(&mut sub).await;
    assert_eq!(server.hub.metrics().subscriptions, 1);
    drop(sub);
    timeout(WAIT, async {
        while server.hub.metrics().subscriptions != 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("unsubscribed on the hub");
}

#[tokio::test]
async fn state_watch_and_clean_close() {
    let server = TestServer::default().await;
    let client = Client::builder(server.ws_url()).connect().unwrap();
    client.connected().await.unwrap();
    assert_eq!(client.state().borrow().state, ConnectionState::Connected);
    client.close().await;
    let StateInfo { state, reason, .. } = client.state().borrow().clone();
    assert_eq!(state, ConnectionState::Closed);
    assert_eq!(reason, "closed by the application");
    assert!(matches!(client.subscribe("repo:a/b").await, Err(Error::Closed(_))));
    timeout(WAIT, async {
        while server.hub.connection_count() != 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the hub saw the close");
}

#[tokio::test]
async fn token_provider_gives_user_channels() {
    let server = TestServer::default().await;
    let client = Client::builder(server.ws_url())
        .token(|| async { Ok(mint(json!({"sub": "alice", "exp": exp_in(600)}))) })
        .connect()
        .unwrap();
    let mut mine = client.subscribe("user:alice").await.unwrap();
    until_subscribed(&mut mine).await;
    let mut theirs = client.subscribe("user:bob").await.unwrap();
    match next(&mut theirs).await {
        Item::Failed { code, .. } => assert_eq!(code, Some(guts_realtime::ErrorCode::Forbidden)),
        other => panic!("{other:?}"),
    }
    assert!(timeout(WAIT, theirs.next()).await.unwrap().is_none(), "a refused stream ends");
}

#[tokio::test]
async fn invalid_channel_and_bad_url_fail_at_once() {
    assert!(matches!(Client::builder("http://x").connect(), Err(Error::InvalidUrl(_))));
    let server = TestServer::default().await;
    let client = Client::builder(server.ws_url()).connect().unwrap();
    let err = client.subscribe("repo:alice").await.unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"invalid channel: repository channel requires owner/name: "repo:alice""#
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_client_shared_by_many_tasks() {
    let server = TestServer::default().await;
    let client = Client::builder(server.ws_url()).connect().unwrap();
    let mut tasks = Vec::new();
    for i in 0..8 {
        let c = client.clone();
        tasks.push(tokio::spawn(async move {
            let mut sub = c.subscribe(&format!("repo:native/t{}", i % 4)).await.unwrap();
            until_subscribed(&mut sub).await;
            sub
        }));
    }
    let mut subs = Vec::new();
    for t in tasks {
        subs.push(t.await.unwrap());
    }
    let seq = server.publish("repo:native/t1", "push", json!({})).await;
    for (i, sub) in subs.iter_mut().enumerate() {
        if i % 4 == 1 {
            assert!(matches!(next(sub).await, Item::Event(e) if e.seq == Some(seq)));
        }
    }
    assert_eq!(server.hub.connection_count(), 1, "all clones share one connection");
}
