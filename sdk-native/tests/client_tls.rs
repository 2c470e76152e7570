//! The native client over `wss://`: a real TLS terminator on 127.0.0.1 (rustls, a certificate
//! for `localhost` made at test time) in front of the real server. With the certificate's root
//! given through `ClientBuilder::tls` events arrive; without it the handshake is refused and the
//! client keeps reconnecting, never connected.

#[path = "../server/tests/server_support/mod.rs"]
mod server_support;

use futures_util::StreamExt;
use guts_realtime_native::client::{ConnectionState, Item};
use guts_realtime_native::{rustls, Client};
use serde_json::json;
use server_support::TestServer;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(10);

/// A TLS terminator: accepts TLS on 127.0.0.1 and pipes the plaintext to `upstream`.
struct TlsFront {
    port: u16,
    root: rustls::pki_types::CertificateDer<'static>,
    handshakes_failed: Arc<std::sync::atomic::AtomicUsize>,
}

async fn tls_front(upstream: SocketAddr) -> TlsFront {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert = made.cert.der().clone();
    let key = rustls::pki_types::PrivateKeyDer::try_from(made.signing_key.serialize_der()).unwrap();
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let failed = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let handshakes_failed = failed.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, failed) = (acceptor.clone(), failed.clone());
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    failed.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    return;
                };
                let Ok(mut plain) = tokio::net::TcpStream::connect(upstream).await else { return };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
            });
        }
    });
    TlsFront { port, root: cert, handshakes_failed }
}

#[tokio::test]
async fn wss_with_a_private_root_delivers_events() {
    let server = TestServer::default().await;
    let front = tls_front(server.addr).await;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(front.root.clone()).unwrap();
    let tls = rustls::ClientConfig::builder().with_root_certificates(roots).with_no_client_auth();
    let url = format!("wss://localhost:{}/ws", front.port);
    let client = Client::builder(url).tls(Arc::new(tls)).connect().unwrap();
    let mut sub = client.subscribe("repo:tls/app").await.unwrap();
    loop {
        match timeout(WAIT, sub.next()).await.expect("item in time").expect("open") {
            Item::Subscribed { .. } => break,
            Item::Failed { .. } => panic!("subscription failed"),
            _ => {}
        }
    }
    let seq = server.publish("repo:tls/app", "push", json!({"over": "tls"})).await;
    match timeout(WAIT, sub.next()).await.expect("event in time").expect("open") {
        Item::Event(e) => {
            assert_eq!(e.seq, Some(seq));
            assert_eq!(e.data["over"], "tls");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(client.state().borrow().state, ConnectionState::Connected);
    client.close().await;
}

#[tokio::test]
async fn wss_refuses_a_certificate_it_cannot_verify() {
    let server = TestServer::default().await;
    let front = tls_front(server.addr).await;
    // The default roots (webpki-roots) do not hold the test certificate's issuer.
    let url = format!("wss://localhost:{}/ws", front.port);
    let client = Client::builder(url)
        .backoff(Duration::from_millis(20), Duration::from_millis(50))
        .connect()
        .unwrap();
    let mut state = client.state();
    let reason = timeout(WAIT, async {
        loop {
            state.changed().await.unwrap();
            let info = state.borrow().clone();
            assert_ne!(info.state, ConnectionState::Connected, "connected to an unverified peer");
            if matches!(info.state, ConnectionState::Reconnecting { .. }) {
                return info.reason;
            }
        }
    })
    .await
    .expect("a failed connect in time");
    assert!(reason.to_lowercase().contains("certificate"), "reason: {reason}");
    // It keeps trying (with backoff) and is never let in.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_ne!(client.state().borrow().state, ConnectionState::Connected);
    assert!(front.handshakes_failed.load(std::sync::atomic::Ordering::SeqCst) >= 2);
    assert_eq!(server.hub.connection_count(), 0);
    client.close().await;
}
