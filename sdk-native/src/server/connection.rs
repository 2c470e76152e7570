//! One WebSocket connection: the upgrade (refused with 503 at the connection cap), then a reader
//! loop (this task) and a writer task.
//!
//! - **Order.** Everything the client sees goes through its hub queue: the `welcome` (queued at
//!   registration, so it is first), replies, replays and events, in the order the hub queued them.
//! - **Writer.** Takes every queued frame at once ([`ClientReceiver::poll_recv_many`], up to
//!   [`ServerConfig::write_batch`](super::ServerConfig::write_batch)), `feed`s them all and
//!   flushes once: a backlog costs one flush, not one syscall per frame. It also sends the
//!   protocol pings and every close: 4008 when the hub closed the queue as a slow consumer, 4009
//!   when nothing arrived for the idle timeout, 1001 on shutdown, and the reader's requests (4001
//!   after a refused token, 1009 after an oversized frame) after the frames already queued, so
//!   the error reply precedes its close.
//! - **Reader.** Decodes each text frame once, applies the rate limit and the [`Authorizer`]
//!   (super::Authorizer), answers `auth` and `publish` itself and hands everything else to
//!   [`EventHub::handle_frame`](guts_realtime::EventHub::handle_frame). Nothing a client sends can
//!   panic it: every failure becomes an `error` frame or a close.
//! - **Teardown.** Once a close is sent (by either side) the reader waits up to the close timeout
//!   for the peer's close, then the connection is dropped and removed from the hub.

use super::auth::Identity;
use super::rate::TokenBucket;
use super::{broker_subscribe, publish, ServerState, FORCED, GRACEFUL};
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::{header, Extensions, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::stream::SplitSink;
use futures_util::{FutureExt, SinkExt, StreamExt};
use guts_realtime::client::{ClientMetadata, CloseReason};
use guts_realtime::{
    decode_client_frame, Channel, Client, ClientCommand, ClientFrame, ClientReceiver, CloseCode,
    Frame, RealtimeError, RequestId, ServerMessage,
};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, Notify};
use tokio::time::{Instant, MissedTickBehavior};
use tokio_tungstenite::tungstenite;

/// `GET /ws`: registers the client with the hub (or answers 503 at the cap) and upgrades.
pub(crate) async fn upgrade(
    State(state): State<Arc<ServerState>>,
    ws: WebSocketUpgrade,
    headers: HeaderMap,
    extensions: Extensions,
) -> Response {
    if state.phase() != super::RUNNING {
        state.counters.upgrades_refused.fetch_add(1, Relaxed);
        return refuse("shutting down");
    }
    let mut metadata = ClientMetadata::now();
    metadata.ip_address =
        extensions.get::<axum::extract::ConnectInfo<SocketAddr>>().map(|c| c.0.ip().to_string());
    metadata.user_agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.chars().take(256).collect());
    let (client, rx) = match state.hub.connect_with(metadata) {
        Ok(c) => c,
        Err(e) => {
            state.counters.upgrades_refused.fetch_add(1, Relaxed);
            tracing::debug!("upgrade refused: {e}");
            return refuse(&e.to_string());
        }
    };
    let conn = Registered::new(state.clone(), client);
    // Queued before anything else can be: the welcome is always the first frame.
    state.hub.send(&conn.client, state.hub.welcome(&conn.client).encode());
    let cfg = &state.config;
    ws.read_buffer_size(cfg.read_buffer_size.max(256))
        .write_buffer_size(cfg.write_buffer_size)
        .max_message_size(cfg.max_frame_bytes)
        .max_frame_size(frame_limit(cfg.max_frame_bytes))
        .on_upgrade(move |socket| run(socket, conn, rx))
}

fn refuse(why: &str) -> Response {
    (StatusCode::SERVICE_UNAVAILABLE, [(header::RETRY_AFTER, "5")], format!("{why}; retry later\n"))
        .into_response()
}

/// A client registered with the hub: removed from it (and from the server's count) when dropped,
/// whether the upgrade failed, the socket died or the connection closed.
struct Registered {
    state: Arc<ServerState>,
    client: Arc<Client>,
}

impl Registered {
    fn new(state: Arc<ServerState>, client: Arc<Client>) -> Registered {
        state.active.fetch_add(1, Relaxed);
        Registered { state, client }
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.state.hub.disconnect(&self.client.id);
        self.state.active.fetch_sub(1, Relaxed);
    }
}

/// A close the writer is to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Close {
    code: CloseCode,
    /// Write the frames already queued first (for a reader's request after an error reply).
    drain: bool,
}

fn reason(code: CloseCode) -> &'static str {
    match code.0 {
        1001 => "server shutting down",
        1009 => "message too big",
        4001 => "unauthenticated",
        4008 => "slow consumer",
        4009 => "idle timeout",
        _ => "",
    }
}

/// State shared by the reader and the writer of one connection.
struct Shared {
    start: Instant,
    /// Milliseconds after `start` when the last frame arrived.
    last_seen: AtomicU64,
    /// A close code the reader asks the writer to send (0: none).
    close: AtomicU16,
    close_requested: Notify,
}

impl Shared {
    fn touch(&self) {
        self.last_seen.store(self.start.elapsed().as_millis() as u64, Relaxed);
    }

    fn idle_for(&self) -> Duration {
        let seen = Duration::from_millis(self.last_seen.load(Relaxed));
        self.start.elapsed().saturating_sub(seen)
    }

    fn request_close(&self, code: CloseCode) {
        if self.close.compare_exchange(0, code.0, Relaxed, Relaxed).is_ok() {
            self.close_requested.notify_one();
        }
    }

    fn requested(&self) -> Close {
        Close { code: CloseCode(self.close.load(Relaxed)), drain: true }
    }
}

/// Largest frame read whole (and then refused with 1009 with the stream at a frame boundary, so
/// nothing unread is left in the socket). A frame announcing more than this is refused from its
/// header alone.
fn frame_limit(max_message: usize) -> usize {
    max_message.saturating_mul(2).max(max_message + 4096)
}

/// Whether a read error is a size-limit error.
fn too_big(e: &axum::Error) -> bool {
    std::error::Error::source(e)
        .and_then(|s| s.downcast_ref::<tungstenite::Error>())
        .is_some_and(|e| matches!(e, tungstenite::Error::Capacity(_)))
}

/// `now + d`, saturating far in the future instead of overflowing on an absurd configuration.
fn after(d: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(d).unwrap_or_else(|| now + Duration::from_secs(86_400 * 365))
}

/// How long the connection stays open after its close was sent when the stream cannot be read
/// any more (after a size-limit error), so the peer reads the close before the socket goes.
const LINGER: Duration = Duration::from_millis(500);

/// The connection task: spawns the writer, runs the reader, tears down.
async fn run(socket: WebSocket, conn: Registered, rx: ClientReceiver) {
    let state = conn.state.clone();
    let shared = Arc::new(Shared {
        start: Instant::now(),
        last_seen: AtomicU64::new(0),
        close: AtomicU16::new(0),
        close_requested: Notify::new(),
    });
    let (sink, mut stream) = socket.split();
    let mut writer = tokio::spawn(write_loop(
        sink,
        rx,
        shared.clone(),
        state.clone(),
        state.shutdown.subscribe(),
    ));
    let mut shutdown = state.shutdown.subscribe();
    let mut reader = Reader {
        bucket: state.config.rate_limit.map(|l| TokenBucket::new(l, std::time::Instant::now())),
        state: state.clone(),
        client: conn.client.clone(),
        identity: Identity::Anonymous,
    };
    tracing::debug!(client = %conn.client.id, "connected");
    let mut writer_done = false;
    // False after a read error: the stream is fused, only the close can still be written.
    let mut readable = true;
    // Set once a close was sent or received: the peer has until then to finish the handshake.
    let mut deadline: Option<Instant> = None;
    let close_timeout = state.config.close_timeout;
    loop {
        let closing = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        // The inbound frame is handled after the select (its handling may wait for the broker).
        let msg = tokio::select! {
            msg = stream.next(), if readable => msg,
            _ = &mut writer, if !writer_done => {
                writer_done = true;
                let end = after(if readable { close_timeout } else { LINGER });
                deadline = Some(deadline.map_or(end, |d| d.min(end)));
                continue;
            }
            () = closing => break,
            _ = shutdown.wait_for(|p| *p >= FORCED) => break,
        };
        match msg {
            None => break,
            Some(Ok(msg)) => {
                shared.touch();
                if deadline.is_some() {
                    continue;
                }
                if let Message::Close(_) = msg {
                    deadline = Some(after(close_timeout));
                } else if let Some(code) = Box::pin(reader.handle(msg)).await {
                    shared.request_close(code);
                    deadline = Some(after(close_timeout));
                }
            }
            Some(Err(e)) if too_big(&e) => {
                readable = false;
                if deadline.is_none() {
                    state.counters.oversized_closes.fetch_add(1, Relaxed);
                    shared.request_close(CloseCode::MESSAGE_TOO_BIG);
                    deadline = Some(after(close_timeout));
                }
            }
            Some(Err(e)) => {
                tracing::debug!(client = %conn.client.id, "read error: {e}");
                break;
            }
        }
    }
    if !writer_done {
        writer.abort();
    }
    tracing::debug!(client = %conn.client.id, "disconnected");
    drop(conn);
}

/// The reader's side of a connection: identity, rate limit, command dispatch.
struct Reader {
    state: Arc<ServerState>,
    client: Arc<Client>,
    identity: Identity,
    bucket: Option<TokenBucket>,
}

impl Reader {
    /// Handles one inbound message; `Some(code)` to close the connection with it.
    async fn handle(&mut self, msg: Message) -> Option<CloseCode> {
        match msg {
            Message::Text(text) => self.command(text.as_str()).await,
            Message::Binary(_) => {
                if self.over_limit(None) {
                    return None;
                }
                self.state.counters.invalid_messages.fetch_add(1, Relaxed);
                self.error(
                    None,
                    &RealtimeError::InvalidMessage(
                        "binary frames are not supported; send JSON text frames".into(),
                    ),
                );
                None
            }
            Message::Ping(_) | Message::Pong(_) | Message::Close(_) => None,
        }
    }

    async fn command(&mut self, text: &str) -> Option<CloseCode> {
        self.state.counters.commands.fetch_add(1, Relaxed);
        let frame = match decode_client_frame(text) {
            Ok(f) => f,
            Err(e) => {
                if !self.over_limit(e.id.as_ref()) {
                    self.state.counters.invalid_messages.fetch_add(1, Relaxed);
                    self.error(e.id.as_ref(), &e.to_error());
                }
                return None;
            }
        };
        if self.over_limit(frame.id.as_ref()) {
            return None;
        }
        self.dispatch(frame).await
    }

    /// Takes a token (publishers are exempt); answers `rate_limited` when there is none.
    fn over_limit(&mut self, id: Option<&RequestId>) -> bool {
        if self.identity.can_publish() {
            return false;
        }
        let Some(bucket) = &mut self.bucket else { return false };
        if bucket.allow(std::time::Instant::now()) {
            return false;
        }
        self.state.counters.rate_limited.fetch_add(1, Relaxed);
        let limit = self.state.config.rate_limit.map(|l| l.per_second).unwrap_or_default();
        self.error(
            id,
            &RealtimeError::RateLimited(format!(
                "too many commands: at most {limit} per second; this one was not executed"
            )),
        );
        true
    }

    async fn dispatch(&mut self, frame: ClientFrame) -> Option<CloseCode> {
        let id = frame.id.clone();
        match &frame.command {
            ClientCommand::Auth { token } => return self.auth(token, id.as_ref()),
            ClientCommand::Subscribe { channel } => {
                let allowed = Channel::parse(channel).and_then(|ch| {
                    self.state.config.authorizer.authorize_subscribe(&self.identity, &ch)
                });
                if let Err(e) = allowed {
                    self.refused(id.as_ref(), &e);
                    return None;
                }
                let since = frame.since.as_ref();
                let state = &self.state;
                if let Some(r) =
                    broker_subscribe(state, &self.client, channel, since, id.as_ref()).await
                {
                    match r {
                        Ok(_)
                        | Err(RealtimeError::SlowConsumer(_) | RealtimeError::ChannelClosed) => {}
                        Err(e) => self.error(id.as_ref(), &e),
                    }
                    return None;
                }
            }
            ClientCommand::Publish { channel, event, data } => {
                let checked = Channel::parse(channel).and_then(|ch| {
                    self.state.config.authorizer.authorize_publish(&self.identity, &ch)?;
                    Ok(ch)
                });
                let result = match checked {
                    Ok(ch) => {
                        publish(&self.state, &ch, *event, data.clone()).await.map(|p| (ch, p))
                    }
                    Err(e) => Err(e),
                };
                match result {
                    Ok((ch, p)) => {
                        let reply =
                            ServerMessage::Published { channel: ch.to_string(), seq: p.seq };
                        self.send(reply.encode_with_id(id.as_ref()));
                    }
                    Err(e) => self.refused(id.as_ref(), &e),
                }
                return None;
            }
            _ => {}
        }
        self.state.hub.handle_frame(&self.client, frame);
        None
    }

    fn auth(&mut self, token: &str, id: Option<&RequestId>) -> Option<CloseCode> {
        match self.state.verifier.verify(token) {
            Ok(identity) => {
                tracing::debug!(client = %self.client.id, user = identity.name(), "authenticated");
                self.identity = identity;
                let reply = ServerMessage::Authenticated { user: self.identity.name().to_owned() };
                self.send(reply.encode_with_id(id));
                self.revoke();
                None
            }
            Err(e) => {
                // `e` says what kind of failure it was; it never contains the token.
                tracing::debug!(client = %self.client.id, "auth refused: {e}");
                self.state.counters.auth_failures.fetch_add(1, Relaxed);
                self.error(id, &e);
                Some(CloseCode::UNAUTHENTICATED)
            }
        }
    }

    /// After a change of identity, drops the channels the new identity may not read.
    fn revoke(&self) {
        let authorizer = &self.state.config.authorizer;
        for ch in self.client.channels() {
            if authorizer.authorize_subscribe(&self.identity, &ch).is_err() {
                let name = ch.to_string();
                if self.state.hub.unsubscribe(&self.client, &name).is_ok() {
                    self.send(ServerMessage::Unsubscribed { channel: name }.encode());
                }
            }
        }
    }

    fn refused(&self, id: Option<&RequestId>, e: &RealtimeError) {
        if matches!(e, RealtimeError::Forbidden(_)) {
            self.state.counters.forbidden.fetch_add(1, Relaxed);
        }
        self.error(id, e);
    }

    fn error(&self, id: Option<&RequestId>, e: &RealtimeError) {
        self.send(ServerMessage::error(e).encode_with_id(id));
    }

    fn send(&self, frame: Frame) {
        // A full queue closes the client as a slow consumer; the writer then closes with 4008.
        self.state.hub.send(&self.client, frame);
    }
}

type Sink = SplitSink<WebSocket, Message>;

fn text(frame: Frame) -> Option<Message> {
    Utf8Bytes::try_from(frame.bytes().clone()).ok().map(Message::Text)
}

/// Why a write could not complete.
enum WriteOutcome {
    /// Written; a close may have been asked for meanwhile.
    Done(Option<Close>),
    /// The socket failed, or accepted nothing for the idle timeout: drop it without a close.
    Abort,
}

/// The writer task: drains the queue in batches, pings, and sends the close.
async fn write_loop(
    mut sink: Sink,
    mut rx: ClientReceiver,
    shared: Arc<Shared>,
    state: Arc<ServerState>,
    mut shutdown: watch::Receiver<u8>,
) {
    let cfg = &state.config;
    let batch = cfg.write_batch.max(1);
    let mut buf: Vec<Frame> = Vec::new();
    let period = cfg.ping_interval.max(Duration::from_millis(10));
    let mut tick = tokio::time::interval_at(after(period), period);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let close = loop {
        let mut ping = false;
        tokio::select! {
            biased;
            () = shared.close_requested.notified() => break shared.requested(),
            _ = shutdown.wait_for(|p| *p >= GRACEFUL) => {
                break Close { code: CloseCode::GOING_AWAY, drain: true };
            }
            _ = tick.tick() => {
                if shared.idle_for() >= cfg.idle_timeout {
                    state.counters.idle_closes.fetch_add(1, Relaxed);
                    break Close { code: CloseCode::SERVER_HEARTBEAT_TIMEOUT, drain: false };
                }
                ping = true;
            }
            n = rx.recv_many(&mut buf, batch) => {
                if n == 0 {
                    let code = match rx.close_reason() {
                        Some(CloseReason::SlowConsumer) => CloseCode::SLOW_CONSUMER,
                        _ => CloseCode::GOING_AWAY,
                    };
                    break Close { code, drain: false };
                }
            }
        }
        match write(&mut sink, &mut buf, ping, &shared, &state, &mut tick, &mut shutdown).await {
            WriteOutcome::Done(None) => {
                // An idle connection keeps no batch buffer and no queue storage (an allocation
                // or two per batch instead, next to a syscall per batch).
                if rx.is_empty() {
                    buf = Vec::new();
                    rx.release_if_empty();
                }
            }
            WriteOutcome::Done(Some(close)) => break close,
            WriteOutcome::Abort => return,
        }
    };
    if close.drain {
        // What is queued now was queued before the close: send it first (bounded by the queue).
        if rx.recv_many(&mut buf, usize::MAX).now_or_never().unwrap_or(0) > 0 {
            let wrote =
                write(&mut sink, &mut buf, false, &shared, &state, &mut tick, &mut shutdown).await;
            if let WriteOutcome::Abort = wrote {
                return;
            }
        }
    }
    tracing::debug!(code = close.code.0, "closing");
    let frame =
        CloseFrame { code: close.code.0, reason: Utf8Bytes::from_static(reason(close.code)) };
    let _ = tokio::time::timeout(cfg.close_timeout, sink.send(Message::Close(Some(frame)))).await;
}

/// Feeds every frame of `buf` (and a ping) to the socket and flushes once. While the socket is
/// blocked it still watches for close requests and shutdown (sent after the write) and for the
/// idle timeout (abort).
async fn write(
    sink: &mut Sink,
    buf: &mut Vec<Frame>,
    ping: bool,
    shared: &Shared,
    state: &ServerState,
    tick: &mut tokio::time::Interval,
    shutdown: &mut watch::Receiver<u8>,
) -> WriteOutcome {
    let io = async {
        for frame in buf.drain(..) {
            if let Some(msg) = text(frame) {
                sink.feed(msg).await?;
            }
        }
        if ping {
            sink.feed(Message::Ping(Default::default())).await?;
        }
        sink.flush().await
    };
    tokio::pin!(io);
    // Fast path: the socket takes everything at once.
    if let Some(r) = (&mut io).now_or_never() {
        return if r.is_ok() { WriteOutcome::Done(None) } else { WriteOutcome::Abort };
    }
    let mut pending: Option<Close> = None;
    loop {
        tokio::select! {
            biased;
            r = &mut io => {
                return if r.is_ok() { WriteOutcome::Done(pending) } else { WriteOutcome::Abort };
            }
            () = shared.close_requested.notified(), if pending.is_none() => {
                pending = Some(shared.requested());
            }
            _ = shutdown.wait_for(|p| *p >= GRACEFUL), if pending.is_none() => {
                pending = Some(Close { code: CloseCode::GOING_AWAY, drain: true });
            }
            _ = tick.tick() => {
                if shared.idle_for() >= state.config.idle_timeout {
                    state.counters.idle_closes.fetch_add(1, Relaxed);
                    return WriteOutcome::Abort;
                }
            }
        }
    }
}
