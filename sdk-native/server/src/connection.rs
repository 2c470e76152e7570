//! One WebSocket connection: the upgrade (refused with 503 at the connection cap), then one task
//! whose hand-written future ([`Connection::poll`]) drives both directions of the unsplit socket
//! with one timer. An idle connection is that task, its socket and its hub records — no second
//! task, no lock between halves, no per-connection channel.
//!
//! - **Order.** Everything the client sees goes through its hub queue: the `welcome` (queued at
//!   registration, so it is first), replies, replays and events, in the order the hub queued them.
//! - **Writing.** Takes every queued frame at once ([`ClientReceiver::poll_recv_many`], up to
//!   [`ServerConfig::write_batch`](super::ServerConfig::write_batch)), gives them all to the
//!   socket and flushes once: a backlog costs one flush, not one syscall per frame. It also sends
//!   the protocol pings and every close: 4008 when the hub closed the queue as a slow consumer,
//!   4009 when nothing arrived for the idle timeout, 1001 on shutdown, and the reader's requests
//!   (4001 after a refused token, 1009 after an oversized frame) after the frames already
//!   queued, so the error reply precedes its close. Each poll writes before it reads, so a
//!   client that never stops sending still gets its replies.
//! - **Reading.** Goes on while a write is blocked. Decodes each text frame once, applies the
//!   rate limit and the [`Authorizer`](super::Authorizer), answers `auth` itself and hands
//!   subscribe, unsubscribe and publish to the [`Engine`](super::Engine); one command at a time.
//!   Nothing a client sends can panic it: every failure becomes an `error` frame or a close.
//! - **Teardown.** Once a close is sent (by either side) the connection waits up to the close
//!   timeout for the peer's close, then it is dropped and removed from the hub. A socket that
//!   accepts nothing for the idle timeout is dropped without a close.

use super::auth::Identity;
use super::rate::TokenBucket;
use super::{ServerState, FORCED, GRACEFUL};
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::{header, Extensions, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::task::AtomicWaker;
use futures_util::{Sink, Stream};
use guts_realtime::client::{ClientMetadata, CloseReason};
use guts_realtime::{
    decode_client_frame, Channel, Client, ClientCommand, ClientFrame, ClientReceiver, CloseCode,
    Frame, RealtimeError, RealtimeEvent, RequestId, ServerMessage,
};
use std::future::{poll_fn, Future};
use std::net::SocketAddr;
use std::pin::{pin, Pin};
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use std::sync::Arc;
use std::task::{ready, Context, Poll, Wake, Waker};
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::{Instant, Sleep};
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
    let (client, rx) = match state.hub().connect_with(metadata) {
        Ok(c) => c,
        Err(e) => {
            state.counters.upgrades_refused.fetch_add(1, Relaxed);
            tracing::debug!("upgrade refused: {e}");
            return refuse(&e.to_string());
        }
    };
    let conn = Registered::new(state.clone(), client);
    // Queued before anything else can be: the welcome is always the first frame.
    state.hub().send(&conn.client, state.hub().welcome(&conn.client).encode());
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
        self.state.hub().disconnect(&self.client.id);
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
fn after(now: Instant, d: Duration) -> Instant {
    now.checked_add(d).unwrap_or_else(|| now + Duration::from_secs(86_400 * 365))
}

/// How long the connection stays open after its close was written when the stream cannot be
/// read any more (after a size-limit error), so the peer reads the close before the socket goes.
const LINGER: Duration = Duration::from_millis(500);

/// Completes once the server's shutdown phase reaches `at`.
async fn phase(mut shutdown: watch::Receiver<u8>, at: u8) {
    while *shutdown.borrow_and_update() < at {
        // An error means the sender is gone, which the connection's `Arc<ServerState>` prevents.
        if shutdown.changed().await.is_err() {
            return;
        }
    }
}

/// The connection task: [`Connection::poll`] plus the shutdown phases (1001 after the queued
/// frames at [`GRACEFUL`], dropped at [`FORCED`]). Not an `async fn`: the task holds the
/// connection once, not also the arguments it was made of.
fn run(socket: WebSocket, conn: Registered, rx: ClientReceiver) -> impl Future<Output = ()> {
    let state = conn.state.clone();
    tracing::debug!(client = %conn.client.id, "connected");
    let mut c = Connection::new(socket, conn, rx, Instant::now());
    async move {
        let mut timer = pin!(tokio::time::sleep_until(c.next_ping));
        let mut shutdown = pin!(phase(state.shutdown.subscribe(), GRACEFUL));
        let mut graceful = false;
        poll_fn(|cx| {
            while shutdown.as_mut().poll(cx).is_ready() {
                if graceful {
                    return Poll::Ready(());
                }
                graceful = true;
                c.close(Close { code: CloseCode::GOING_AWAY, drain: true }, Instant::now());
                shutdown.set(phase(state.shutdown.subscribe(), FORCED));
            }
            c.poll(cx, timer.as_mut())
        })
        .await;
        tracing::debug!(client = %c.conn.client.id, "disconnected");
    }
}

/// A command being handled: gives the reader back, with a close to send if any.
type Command = Pin<Box<dyn Future<Output = (Reader, Option<CloseCode>)> + Send>>;

/// Where the connection is in closing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Closing {
    Open,
    /// This close is written once the frames before it are.
    Pending(Close),
    /// A close is in the socket: ours, or tungstenite's reply to the peer's. Reading goes on
    /// until the peer's close (the stream ends) or the deadline.
    Sent,
}

/// Both directions of one connection, driven by one [`Connection::poll`] in one task, with one
/// timer for pings, the idle timeout, the write interval and the close deadline.
struct Connection {
    socket: WebSocket,
    rx: ClientReceiver,
    /// The command handler; `None` while `command` owns it.
    reader: Option<Reader>,
    /// The command being handled (it may wait for the broker); reading resumes after it.
    command: Option<Command>,
    /// Frames taken from the queue; `batch[fed..]` are not in the socket yet.
    batch: Vec<Frame>,
    fed: usize,
    /// Frames went into the socket since its last flush.
    unflushed: bool,
    /// The batch waits for [`ServerConfig::write_interval`](super::ServerConfig::write_interval)
    /// to pass since `last_write`.
    held: bool,
    /// When the last flush ended (kept only with a write interval).
    last_write: Instant,
    ping_due: bool,
    /// When the last frame arrived: the idle timeout counts from here.
    last_seen: Instant,
    next_ping: Instant,
    closing: Closing,
    /// Frames still taken from the queue before a draining close: those queued when it was asked.
    drain_left: usize,
    /// Set when the connection starts closing: it is dropped then at the latest.
    deadline: Option<Instant>,
    /// False after a read error: only the close can still be written.
    readable: bool,
    /// The socket's read side gave a frame when last polled: poll it again.
    read_more: bool,
    /// This poll read something (which may have queued a reply or asked for a close).
    read_some: bool,
    /// Wakes the task for the socket's read side and says so, so a wake-up for writing (every
    /// event queued) does not also poll the socket for reading.
    read_wake: Arc<ReadWake>,
    read_waker: Waker,
    conn: Registered,
}

/// The waker the socket's read side is polled with.
#[derive(Default)]
struct ReadWake {
    task: AtomicWaker,
    woken: AtomicBool,
}

impl Wake for ReadWake {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Release);
        self.task.wake();
    }
}

impl Connection {
    fn new(socket: WebSocket, conn: Registered, rx: ClientReceiver, now: Instant) -> Connection {
        let state = &conn.state;
        let reader = Reader {
            bucket: state.config.rate_limit.map(|l| TokenBucket::new(l, std::time::Instant::now())),
            state: state.clone(),
            client: conn.client.clone(),
            identity: Identity::Anonymous,
        };
        let read_wake = Arc::new(ReadWake::default());
        Connection {
            socket,
            rx,
            reader: Some(reader),
            command: None,
            batch: Vec::new(),
            fed: 0,
            unflushed: false,
            held: false,
            // As if the last write were an interval ago: the welcome is not held.
            last_write: now.checked_sub(state.config.write_interval).unwrap_or(now),
            ping_due: false,
            last_seen: now,
            next_ping: after(now, state.config.ping_interval.max(Duration::from_millis(10))),
            closing: Closing::Open,
            drain_left: 0,
            deadline: None,
            readable: true,
            read_more: true,
            read_some: false,
            read_waker: Waker::from(read_wake.clone()),
            read_wake,
            conn,
        }
    }

    /// Drives the connection; `Ready` once it is to be dropped.
    fn poll(&mut self, cx: &mut Context<'_>, mut timer: Pin<&mut Sleep>) -> Poll<()> {
        loop {
            // Writing first: a client that keeps the read side busy spends the task's budget
            // there, and its own replies and pings must still go out.
            if self.poll_write(cx).is_ready() {
                return Poll::Ready(());
            }
            self.read_some = false;
            if self.poll_read(cx).is_ready() || (self.read_some && self.poll_write(cx).is_ready()) {
                return Poll::Ready(());
            }
            let wake = self.wake_at();
            if timer.deadline() != wake {
                timer.as_mut().reset(wake);
            }
            ready!(timer.as_mut().poll(cx));
            // The timer fired: its deadline has come, whatever the clock's rounding.
            if self.on_timer(Instant::now().max(wake)) {
                return Poll::Ready(());
            }
        }
    }

    /// Starts closing with `close` (the first close asked for wins).
    fn close(&mut self, close: Close, now: Instant) {
        if self.closing != Closing::Open {
            return;
        }
        self.closing = Closing::Pending(close);
        self.ping_due = false;
        self.held = false;
        if close.drain {
            // What is queued now was queued before the close: it is written first (bounded by
            // the queue's capacity).
            self.drain_left = self.rx.len();
        } else {
            self.batch.clear();
            self.fed = 0;
        }
        self.deadline = Some(after(now, self.conn.state.config.close_timeout));
    }

    /// The next instant the timer has to wake the connection.
    fn wake_at(&self) -> Instant {
        match (self.closing, self.deadline) {
            (Closing::Open, _) | (_, None) => {
                let cfg = &self.conn.state.config;
                let idle = after(self.last_seen, cfg.idle_timeout);
                let wake = self.next_ping.min(idle);
                if self.held {
                    wake.min(after(self.last_write, cfg.write_interval))
                } else {
                    wake
                }
            }
            (_, Some(deadline)) => deadline,
        }
    }

    /// The timer fired at `now`; `true` to drop the connection.
    fn on_timer(&mut self, now: Instant) -> bool {
        let cfg = &self.conn.state.config;
        if self.closing != Closing::Open {
            return self.deadline.is_some_and(|d| now >= d);
        }
        if now >= after(self.last_seen, cfg.idle_timeout) {
            self.conn.state.counters.idle_closes.fetch_add(1, Relaxed);
            if self.unflushed || (!self.held && self.fed < self.batch.len()) {
                // The socket accepted nothing for the idle timeout: drop it without a close.
                return true;
            }
            self.close(Close { code: CloseCode::SERVER_HEARTBEAT_TIMEOUT, drain: false }, now);
            return false;
        }
        if self.held && now >= after(self.last_write, cfg.write_interval) {
            self.held = false;
        }
        if now >= self.next_ping {
            self.ping_due = true;
            self.next_ping = after(now, cfg.ping_interval.max(Duration::from_millis(10)));
        }
        false
    }

    /// Reads and handles inbound frames, one command at a time; `Ready` to drop the connection.
    fn poll_read(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        loop {
            if let Some(command) = &mut self.command {
                let (reader, close) = ready!(command.as_mut().poll(cx));
                self.read_some = true;
                self.reader = Some(reader);
                self.command = None;
                if let Some(code) = close {
                    self.close(Close { code, drain: true }, Instant::now());
                }
            }
            if !self.readable || !(self.read_more || self.read_wake.woken.swap(false, Acquire)) {
                return Poll::Pending;
            }
            self.read_wake.task.register(cx.waker());
            let mut read_cx = Context::from_waker(&self.read_waker);
            let polled = Pin::new(&mut self.socket).poll_next(&mut read_cx);
            self.read_more = polled.is_ready();
            self.read_some |= self.read_more;
            let msg = match ready!(polled) {
                None => return Poll::Ready(()),
                Some(Ok(msg)) => msg,
                Some(Err(e)) if too_big(&e) => {
                    self.readable = false;
                    if self.closing == Closing::Open {
                        self.conn.state.counters.oversized_closes.fetch_add(1, Relaxed);
                        self.close(
                            Close { code: CloseCode::MESSAGE_TOO_BIG, drain: true },
                            Instant::now(),
                        );
                    }
                    return Poll::Pending;
                }
                Some(Err(e)) => {
                    tracing::debug!(client = %self.conn.client.id, "read error: {e}");
                    return Poll::Ready(());
                }
            };
            let now = Instant::now();
            self.last_seen = now;
            match msg {
                _ if self.closing == Closing::Sent => {}
                Message::Close(_) => {
                    // tungstenite queued the reply: flush it, write nothing after it.
                    if self.closing == Closing::Open {
                        self.deadline = Some(after(now, self.conn.state.config.close_timeout));
                    }
                    self.closing = Closing::Sent;
                    self.batch.clear();
                    self.fed = 0;
                    self.ping_due = false;
                    self.unflushed = true;
                }
                _ if self.closing != Closing::Open => {}
                msg => {
                    let Some(mut reader) = self.reader.take() else { return Poll::Ready(()) };
                    self.command = Some(Box::pin(async move {
                        let close = reader.handle(msg).await;
                        (reader, close)
                    }));
                }
            }
        }
    }

    /// Writes queued frames in batches (all of a batch, then one flush), pings and the close;
    /// `Ready` when the socket failed.
    fn poll_write(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let limit = self.conn.state.config.write_batch.max(1);
        let interval = self.conn.state.config.write_interval;
        loop {
            if self.held {
                return Poll::Pending;
            }
            let room = limit.saturating_sub(self.batch.len());
            if self.fed == 0
                && !self.batch.is_empty()
                && room > 0
                && !interval.is_zero()
                && self.closing == Closing::Open
            {
                // A held batch, released: what was queued meanwhile joins it (a closed queue is
                // seen below). Not while draining: that counts what it takes.
                let _ = self.rx.poll_recv_many(cx, &mut self.batch, room);
            }
            while self.fed < self.batch.len() {
                if !ready!(self.poll_ready(cx)) {
                    return Poll::Ready(());
                }
                let msg = text(&self.batch[self.fed]);
                self.fed += 1;
                if msg.is_some_and(|msg| !self.start_send(msg)) {
                    return Poll::Ready(());
                }
            }
            self.batch.clear();
            self.fed = 0;
            if self.ping_due {
                if !ready!(self.poll_ready(cx)) {
                    return Poll::Ready(());
                }
                self.ping_due = false;
                if !self.start_send(Message::Ping(Default::default())) {
                    return Poll::Ready(());
                }
            }
            if self.unflushed {
                if ready!(Pin::new(&mut self.socket).poll_flush(cx)).is_err() {
                    return Poll::Ready(());
                }
                self.unflushed = false;
                if !interval.is_zero() {
                    self.last_write = Instant::now();
                }
                if self.closing == Closing::Sent && !self.readable {
                    let linger = after(Instant::now(), LINGER);
                    self.deadline = Some(self.deadline.map_or(linger, |d| d.min(linger)));
                }
            }
            let max = match self.closing {
                Closing::Sent => return Poll::Pending,
                Closing::Pending(close) if self.drain_left == 0 => {
                    if !ready!(self.poll_ready(cx)) {
                        return Poll::Ready(());
                    }
                    tracing::debug!(code = close.code.0, "closing");
                    self.closing = Closing::Sent;
                    let reason = Utf8Bytes::from_static(reason(close.code));
                    let frame = CloseFrame { code: close.code.0, reason };
                    if !self.start_send(Message::Close(Some(frame))) {
                        return Poll::Ready(());
                    }
                    continue;
                }
                Closing::Pending(_) => limit.min(self.drain_left),
                Closing::Open => limit,
            };
            match self.rx.poll_recv_many(cx, &mut self.batch, max) {
                Poll::Ready(0) => {
                    let code = match self.rx.close_reason() {
                        Some(CloseReason::SlowConsumer) => CloseCode::SLOW_CONSUMER,
                        _ => CloseCode::GOING_AWAY,
                    };
                    self.close(Close { code, drain: false }, Instant::now());
                    self.drain_left = 0;
                }
                Poll::Ready(n) => {
                    self.drain_left = self.drain_left.saturating_sub(n);
                    // Too soon after the last write: hold these (and, with no waker left in the
                    // queue, take what comes meanwhile at the same time, in the same write).
                    if self.closing == Closing::Open
                        && !interval.is_zero()
                        && Instant::now() < after(self.last_write, interval)
                    {
                        self.held = true;
                        return Poll::Pending;
                    }
                }
                Poll::Pending if matches!(self.closing, Closing::Pending(_)) => {
                    // Everything queued before the close is written: the close goes next.
                    self.drain_left = 0;
                }
                Poll::Pending => {
                    if self.batch.capacity() > 0 {
                        // An idle connection keeps no batch buffer and no queue storage (an
                        // allocation or two per batch instead, next to a syscall per batch).
                        self.batch = Vec::new();
                        self.rx.release_if_empty();
                    }
                    return Poll::Pending;
                }
            }
        }
    }

    /// Whether the socket takes a frame (`false`: it failed).
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<bool> {
        Pin::new(&mut self.socket).poll_ready(cx).map(|r| r.is_ok())
    }

    /// Gives `msg` to the socket (`false`: it failed).
    fn start_send(&mut self, msg: Message) -> bool {
        self.unflushed = true;
        Pin::new(&mut self.socket).start_send(msg).is_ok()
    }
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
        let id = frame.id.as_ref();
        let engine = &*self.state.engine;
        match &frame.command {
            ClientCommand::Auth { token } => return self.auth(token, id),
            ClientCommand::Subscribe { channel } => {
                let allowed = Channel::parse(channel).and_then(|ch| {
                    self.state.config.authorizer.authorize_subscribe(&self.identity, &ch)
                });
                let result = match allowed {
                    // The engine queues the reply and the replay itself, in order with events.
                    Ok(()) => {
                        engine.subscribe(&self.client, channel, frame.since.as_ref(), id).await
                    }
                    Err(e) => Err(e),
                };
                match result {
                    Ok(_) | Err(RealtimeError::SlowConsumer(_) | RealtimeError::ChannelClosed) => {}
                    Err(e) => self.refused(id, &e),
                }
            }
            ClientCommand::Unsubscribe { channel } => {
                let reply = match engine.unsubscribe(&self.client, channel) {
                    Ok((ch, _)) => ServerMessage::Unsubscribed { channel: ch.to_string() },
                    Err(e) => ServerMessage::error(&e),
                };
                self.send(reply.encode_with_id(id));
            }
            ClientCommand::Ping => self.send(ServerMessage::Pong.encode_with_id(id)),
            ClientCommand::Publish { channel, event, data } => {
                let checked = Channel::parse(channel).and_then(|ch| {
                    self.state.config.authorizer.authorize_publish(&self.identity, &ch)?;
                    Ok(ch)
                });
                let result = match checked {
                    Ok(ch) => {
                        let event = RealtimeEvent::new(ch.to_string(), *event, data.clone());
                        engine.publish(event).await.map(|p| (ch, p))
                    }
                    Err(e) => Err(e),
                };
                match result {
                    Ok((ch, p)) => {
                        let reply =
                            ServerMessage::Published { channel: ch.to_string(), seq: p.seq };
                        self.send(reply.encode_with_id(id));
                    }
                    Err(e) => self.refused(id, &e),
                }
            }
            // A command this protocol version added that the server does not serve yet.
            _ => self.error(id, &RealtimeError::InvalidMessage("unsupported command".into())),
        }
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
                if self.state.engine.unsubscribe(&self.client, &name).is_ok() {
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
        self.state.hub().send(&self.client, frame);
    }
}

fn text(frame: &Frame) -> Option<Message> {
    Utf8Bytes::try_from(frame.bytes().clone()).ok().map(Message::Text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn future_size<A, B, C, F: Future>(_: fn(A, B, C) -> F) -> usize {
        std::mem::size_of::<F>()
    }

    /// Idle memory per connection is mostly this future (inside tokio's task cell, which rounds
    /// to 128 bytes): 960 bytes with Rust 1.95, ~0.4 KB less than as an `async fn` holding its
    /// arguments too. A guard with headroom for other compilers, not an exact figure.
    #[test]
    fn the_connection_future_stays_small() {
        let size = future_size(run);
        assert!(size <= 1152, "connection future is {size} bytes (Connection {})", {
            std::mem::size_of::<Connection>()
        });
    }
}
