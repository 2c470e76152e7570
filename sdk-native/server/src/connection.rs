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
//!   4009 when nothing arrived for the idle timeout, 1012 on shutdown, and the reader's requests
//!   (4001 after a refused token, 1009 after an oversized frame) after the frames already
//!   queued, so the error reply precedes its close. Each poll writes before it reads, so a
//!   client that never stops sending still gets its replies.
//! - **Reading.** Goes on while a write is blocked. Every frame read goes to the connection's
//!   rules ([`ServerConnection`]: decoding, the rate limit, auth, dispatch, pings, the idle
//!   timeout, close decisions), whose requests run through
//!   [`execute`](guts_realtime::server::execute) against the engine, one command at a time.
//!   Nothing a client sends can panic it: every failure becomes an `error` frame or a close.
//! - **Teardown.** Once a close is sent (by either side) the connection waits up to the close
//!   timeout for the peer's close, then it is dropped and removed from the hub. A socket that
//!   accepts nothing for the idle timeout is dropped without a close.

use super::{ServerState, FORCED, GRACEFUL};
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::{header, Extensions, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::task::AtomicWaker;
use futures_util::{Sink, Stream};
use guts_realtime::client::ClientMetadata;
use guts_realtime::server::{execute, Close, Outcome, ServerConnection};
use guts_realtime::{ClientReceiver, CloseCode, Frame, HubClient};
use std::future::{poll_fn, Future};
use std::net::SocketAddr;
use std::pin::{pin, Pin};
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use std::sync::{Arc, OnceLock};
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
    if let Some(origin) = headers.get(header::ORIGIN) {
        if !origin.to_str().is_ok_and(|o| state.config.origin_allowed(o)) {
            state.counters.upgrades_refused.fetch_add(1, Relaxed);
            return (StatusCode::FORBIDDEN, "origin not allowed\n").into_response();
        }
    }
    let ip = extensions.get::<axum::extract::ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    let per_ip = state.config.max_connections_per_ip;
    let counted = ip.filter(|_| per_ip > 0);
    if counted.is_some_and(|ip| !state.per_address.acquire(ip, per_ip)) {
        state.counters.upgrades_refused.fetch_add(1, Relaxed);
        return refuse("too many connections from this address");
    }
    let mut metadata = ClientMetadata::now();
    metadata.ip_address = ip.map(|ip| ip.to_string());
    metadata.user_agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.chars().take(256).collect());
    let (client, rx) = match state.hub().connect_with(metadata) {
        Ok(c) => c,
        Err(e) => {
            if let Some(ip) = counted {
                state.per_address.release(ip);
            }
            state.counters.upgrades_refused.fetch_add(1, Relaxed);
            tracing::debug!("upgrade refused: {e}");
            return refuse(&e.to_string());
        }
    };
    let conn = Registered::new(state.clone(), client);
    let welcome = state.hub().welcome(&conn.client).encode();
    let mut rules =
        ServerConnection::new(state.connections.clone(), clock(Instant::now()), welcome);
    // Queued before anything else can be: the welcome is always the first frame.
    pump(&state, &conn.client, &mut rules);
    let cfg = &state.config;
    ws.read_buffer_size(cfg.read_buffer_size)
        .write_buffer_size(cfg.write_buffer_size)
        .max_message_size(cfg.max_frame_bytes)
        .max_frame_size(frame_limit(cfg.max_frame_bytes))
        .on_upgrade(move |socket| run(socket, conn, rx, rules))
}

fn refuse(why: &str) -> Response {
    (StatusCode::SERVICE_UNAVAILABLE, [(header::RETRY_AFTER, "5")], format!("{why}; retry later\n"))
        .into_response()
}

/// A client registered with the hub: removed from it (and from the server's counts, its
/// address's included) when dropped,
/// whether the upgrade failed, the socket died or the connection closed.
struct Registered {
    state: Arc<ServerState>,
    client: Arc<HubClient>,
}

impl Registered {
    fn new(state: Arc<ServerState>, client: Arc<HubClient>) -> Registered {
        state.active.fetch_add(1, Relaxed);
        Registered { state, client }
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.state.hub().disconnect(&self.client.id);
        self.state.active.fetch_sub(1, Relaxed);
        if self.state.config.max_connections_per_ip > 0 {
            // The address counted at the upgrade, kept in the client's metadata.
            let ip = self.client.metadata.ip_address.as_deref().and_then(|s| s.parse().ok());
            if let Some(ip) = ip {
                self.state.per_address.release(ip);
            }
        }
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

/// The rules' time: a [`Duration`] since the first connection of the process.
fn clock(t: Instant) -> Duration {
    t.saturating_duration_since(*ORIGIN.get_or_init(Instant::now))
}

/// The instant of a rules' time.
fn instant(d: Duration) -> Instant {
    after(*ORIGIN.get_or_init(Instant::now), d)
}

static ORIGIN: OnceLock<Instant> = OnceLock::new();

/// Hands what the rules produced on: frames to the client's queue (in order with events).
fn pump(state: &ServerState, client: &Arc<HubClient>, rules: &mut ServerConnection) {
    while let Some(frame) = rules.poll_transmit() {
        // A full queue closes the client as a slow consumer; the writer then closes with 4008.
        state.hub().send(client, frame);
    }
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

/// The connection task: [`Connection::poll`] plus the shutdown phases (1012 after the queued
/// frames at [`GRACEFUL`], dropped at [`FORCED`]). Not an `async fn`: the task holds the
/// connection once, not also the arguments it was made of.
fn run(
    socket: WebSocket,
    conn: Registered,
    rx: ClientReceiver,
    rules: ServerConnection,
) -> impl Future<Output = ()> {
    let state = conn.state.clone();
    let ip = conn.client.metadata.ip_address.as_deref().unwrap_or("-");
    tracing::info!(connection_id = %conn.client.id, ip, "connected");
    let opened = Instant::now();
    let mut c = Connection::new(socket, conn, rx, rules, opened);
    async move {
        let mut timer = pin!(tokio::time::sleep_until(c.wake_at()));
        let mut shutdown = pin!(phase(state.shutdown.subscribe(), GRACEFUL));
        let mut graceful = false;
        poll_fn(|cx| {
            while shutdown.as_mut().poll(cx).is_ready() {
                if graceful {
                    return Poll::Ready(());
                }
                graceful = true;
                let hint = spread(state.config.reconnect_spread, &c.conn.client.id);
                c.rules.restart(clock(Instant::now()), hint);
                c.take_close();
                shutdown.set(phase(state.shutdown.subscribe(), FORCED));
            }
            c.poll(cx, timer.as_mut())
        })
        .await;
        let lifetime = opened.elapsed();
        state.metrics.connection_lifetime.observe(lifetime);
        state.metrics.closed(c.close_code);
        let user = c.rules.identity().name().to_owned();
        tracing::info!(
            connection_id = %c.conn.client.id,
            close_code = c.close_code,
            user,
            secs = lifetime.as_secs_f64(),
            "disconnected"
        );
    }
}

/// A `retry_after_ms` hint drawn uniformly from `[0, spread]` (none when `spread` is zero).
fn spread(spread: Duration, client: &str) -> Option<Duration> {
    use std::hash::BuildHasher;
    if spread.is_zero() {
        return None;
    }
    // A fresh random key per call: uniform enough for spreading reconnects.
    let r = std::collections::hash_map::RandomState::new().hash_one(client);
    Some(spread.mul_f64((r >> 11) as f64 / (1u64 << 53) as f64))
}

/// A request of the rules being carried out.
type Command = Pin<Box<dyn Future<Output = Outcome> + Send>>;

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
    /// The connection's rules: every decision that is not socket I/O.
    rules: ServerConnection,
    /// The request being carried out (it may wait for the broker); reading resumes after it.
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
    closing: Closing,
    /// The close code sent or received (1006 until there is one).
    close_code: u16,
    /// The fan-out instant of the oldest event frame written since the last flush.
    oldest_event: Option<Instant>,
    /// Frames still taken from the queue before a draining close: those queued when it was asked.
    drain_left: usize,
    /// After the close is written to a stream that cannot be read: dropped then at the latest.
    linger: Option<Instant>,
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
    fn new(
        socket: WebSocket,
        conn: Registered,
        rx: ClientReceiver,
        rules: ServerConnection,
        now: Instant,
    ) -> Connection {
        let read_wake = Arc::new(ReadWake::default());
        Connection {
            socket,
            rx,
            rules,
            command: None,
            batch: Vec::new(),
            fed: 0,
            unflushed: false,
            held: false,
            // As if the last write were an interval ago: the welcome is not held.
            last_write: now.checked_sub(conn.state.config.write_interval).unwrap_or(now),
            closing: Closing::Open,
            close_code: 1006,
            oldest_event: None,
            drain_left: 0,
            linger: None,
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
            if self.unflushed || (!self.held && self.fed < self.batch.len()) {
                // The socket refused what waits for it: the rules time the stall.
                self.rules.handle_write_blocked(clock(Instant::now()));
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

    /// Hands the rules' output on: frames to the queue, and the close they asked for to the
    /// writer.
    fn take_close(&mut self) {
        pump(&self.conn.state, &self.conn.client, &mut self.rules);
        if let Some(close) = self.rules.poll_close() {
            self.close(close);
        }
    }

    /// Starts writing `close` (the first close wins).
    fn close(&mut self, close: Close) {
        if self.closing != Closing::Open {
            return;
        }
        self.closing = Closing::Pending(close);
        self.held = false;
        if close.drain {
            // What is queued now was queued before the close: it is written first (bounded by
            // the queue's capacity).
            self.drain_left = self.rx.len();
        } else {
            self.batch.clear();
            self.fed = 0;
        }
    }

    /// The next instant the timer has to wake the connection.
    fn wake_at(&self) -> Instant {
        let mut wake = instant(self.rules.poll_timeout());
        if let Some(linger) = self.linger {
            wake = wake.min(linger);
        }
        if self.held && self.closing == Closing::Open {
            wake = wake.min(after(self.last_write, self.conn.state.config.write_interval));
        }
        wake
    }

    /// The timer fired at `now`; `true` to drop the connection.
    fn on_timer(&mut self, now: Instant) -> bool {
        if self.linger.is_some_and(|l| now >= l) || self.rules.is_done(clock(now)) {
            return true;
        }
        // Whether the socket accepted nothing of what it was given (before a held batch is
        // released below: a held batch was never given to it).
        let stuck = self.unflushed || (!self.held && self.fed < self.batch.len());
        self.rules.handle_timeout(clock(now));
        if self.held && now >= after(self.last_write, self.conn.state.config.write_interval) {
            self.held = false;
        }
        pump(&self.conn.state, &self.conn.client, &mut self.rules);
        if let Some(close) = self.rules.poll_close() {
            if close.code == CloseCode::SERVER_HEARTBEAT_TIMEOUT {
                if stuck {
                    // The socket accepted nothing for the idle timeout: drop it without a close.
                    return true;
                }
                // Presumed dead: it leaves the hub (subscriptions, presence) now, not after the
                // close handshake it will probably never answer (up to the close timeout).
                self.conn.state.hub().disconnect(&self.conn.client.id);
            }
            self.close(close);
        }
        false
    }

    /// Starts carrying out the rules' next request, if any.
    fn start_command(&mut self) {
        let Some((request, id)) = self.rules.poll_request() else { return };
        let state = self.conn.state.clone();
        let client = self.conn.client.clone();
        let identity = self.rules.identity().clone();
        self.command = Some(Box::pin(async move {
            let state = &*state;
            let (engine, authorizer) = (&*state.engine, &*state.config.authorizer);
            execute(engine, authorizer, &state.verifier, &client, &identity, request, id.as_ref())
                .await
        }));
    }

    /// Reads inbound frames and hands them to the rules, one command at a time; `Ready` to drop
    /// the connection.
    fn poll_read(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        loop {
            if let Some(command) = &mut self.command {
                let outcome = ready!(command.as_mut().poll(cx));
                self.read_some = true;
                self.command = None;
                let client = &self.conn.client.id;
                match &outcome {
                    Outcome::Auth(Ok(who)) => {
                        tracing::debug!(%client, user = who.identity.name(), "authenticated");
                    }
                    // The error says what kind of failure it was; it never contains the token.
                    Outcome::Auth(Err(e)) => {
                        tracing::info!(connection_id = %client, "auth refused: {e}");
                    }
                    _ => {}
                }
                self.rules.handle_outcome(clock(Instant::now()), outcome);
                self.take_close();
            }
            self.start_command();
            if self.command.is_some() {
                continue;
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
                    self.rules.handle_oversized(clock(Instant::now()));
                    self.take_close();
                    return Poll::Pending;
                }
                Some(Err(e)) => {
                    tracing::debug!(client = %self.conn.client.id, "read error: {e}");
                    return Poll::Ready(());
                }
            };
            let now = clock(Instant::now());
            match msg {
                _ if self.closing == Closing::Sent => self.rules.handle_control(now),
                Message::Close(frame) => {
                    if self.close_code == 1006 {
                        self.close_code = frame.map_or(1005, |f| f.code);
                    }
                    // tungstenite queued the reply: flush it, write nothing after it.
                    self.rules.handle_peer_close(now);
                    self.closing = Closing::Sent;
                    self.batch.clear();
                    self.fed = 0;
                    self.unflushed = true;
                }
                Message::Text(text) => self.rules.handle_text(now, text.as_str()),
                Message::Binary(_) => self.rules.handle_binary(now),
                Message::Ping(_) => self.rules.handle_ping(now),
                Message::Pong(_) => self.rules.handle_control(now),
            }
            self.take_close();
        }
    }

    /// Writes queued frames in batches (all of a batch, then one flush), pings and the close;
    /// `Ready` when the socket failed.
    fn poll_write(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let limit = self.conn.state.config.write_batch;
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
                if let Poll::Ready((_, at)) =
                    self.rx.poll_recv_many_timed(cx, &mut self.batch, room)
                {
                    self.saw_event(at);
                }
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
            if self.rules.ping_due() && self.closing == Closing::Open {
                if !ready!(self.poll_ready(cx)) {
                    return Poll::Ready(());
                }
                self.rules.ping_sent();
                if !self.start_send(Message::Ping(Default::default())) {
                    return Poll::Ready(());
                }
            }
            if self.unflushed {
                if ready!(Pin::new(&mut self.socket).poll_flush(cx)).is_err() {
                    return Poll::Ready(());
                }
                self.unflushed = false;
                self.rules.handle_write_progress();
                if let Some(at) = self.oldest_event.take() {
                    self.conn.state.metrics.delivery_latency.observe(at.elapsed());
                }
                if !interval.is_zero() {
                    self.last_write = Instant::now();
                }
                if self.closing == Closing::Sent && !self.readable {
                    let linger = after(Instant::now(), LINGER);
                    self.linger = Some(self.linger.map_or(linger, |d| d.min(linger)));
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
                    self.close_code = close.code.0;
                    let reason = Utf8Bytes::from(close.reason());
                    let frame = CloseFrame { code: close.code.0, reason };
                    if !self.start_send(Message::Close(Some(frame))) {
                        return Poll::Ready(());
                    }
                    continue;
                }
                Closing::Pending(_) => limit.min(self.drain_left),
                Closing::Open => limit,
            };
            match self.rx.poll_recv_many_timed(cx, &mut self.batch, max) {
                Poll::Ready((0, _)) => {
                    let reason = self.rx.close_reason();
                    self.rules.handle_queue_closed(clock(Instant::now()), reason);
                    self.take_close();
                    self.drain_left = 0;
                }
                Poll::Ready((n, at)) => {
                    self.saw_event(at);
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

    /// Frames fanned out at `at` (the oldest event frame of a batch) are on their way.
    fn saw_event(&mut self, at: Option<std::time::Instant>) {
        if let Some(at) = at {
            let at = Instant::from_std(at);
            self.oldest_event = Some(self.oldest_event.map_or(at, |o| o.min(at)));
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
fn text(frame: &Frame) -> Option<Message> {
    Utf8Bytes::try_from(frame.bytes().clone()).ok().map(Message::Text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn future_size<A, B, C, D, F: Future>(_: fn(A, B, C, D) -> F) -> usize {
        std::mem::size_of::<F>()
    }

    /// Idle memory per connection is mostly this future (inside tokio's task cell, which rounds
    /// to 128 bytes): 960 bytes with Rust 1.95, ~0.4 KB less than as an `async fn` holding its
    /// arguments too. A guard with headroom for other compilers, not an exact figure.
    #[test]
    fn the_connection_future_stays_small() {
        let size = future_size(run);
        eprintln!("connection future {size} B, Connection {} B", std::mem::size_of::<Connection>());
        assert!(size <= 1152, "connection future is {size} bytes (Connection {})", {
            std::mem::size_of::<Connection>()
        });
    }
}
