//! The pair of the virtual-time tests: the real client [`Session`], the real server connection
//! rules ([`ServerConnection`], its requests carried out by the real
//! [`execute`](guts_realtime::server::execute)) and the real in-memory [`EventHub`], joined by a
//! transport this file plays, in virtual time: no sockets, no sleeps. It stands in for the socket
//! (frames both ways, WebSocket pings answered, closes) and for the token verifier (`good` is
//! alice, `bob` is bob, anything else is refused); every rule under test is the session's, the
//! server connection's or the hub's own.
#![allow(dead_code)]

use guts_realtime::client::{ClientReceiver, TryRecvError};
use guts_realtime::engine::now_or_never;
use guts_realtime::server::{
    execute, Close, ConnectionConfig, ConnectionShared, DefaultAuthorizer, Identity, RepoAccess,
    ServerConnection, TokenVerifier, User, Verified,
};
use guts_realtime::session::{
    Action, Event, GapReason, Inbound, Session, SessionConfig, SubId, TokenError,
};
use guts_realtime::{
    decode_server_frame, EventHub, EventKind, HubClient, RealtimeError, ServerMessage,
};
use std::sync::Arc;
use std::time::Duration;

pub const S: Duration = Duration::from_secs(1);
pub const MS: Duration = Duration::from_millis(1);

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TokenPolicy {
    Good,
    Bad,
    Unauthorized,
    Transient,
    /// A token valid for this many more seconds (`expiring:S`).
    Expiring(u64),
}

/// The harness's token verifier.
pub struct Tokens;

impl TokenVerifier for Tokens {
    fn verify(&self, token: &str) -> Result<Verified, RealtimeError> {
        let user = |id: &str| Identity::from(User::new(id).orgs(["acme"]).repos(["acme/*"]));
        let forever = |who: Identity| Ok(Verified::new(who, None));
        match token {
            "good" => forever(user("alice")),
            "bob" => forever(user("bob")),
            "publisher" => forever(Identity::PublishKey),
            // `expiring:S` / `expiring-bob:S`: valid for S more seconds.
            t => match t.split_once(':') {
                Some(("expiring", s)) | Some(("expiring-bob", s)) => {
                    let who = if t.starts_with("expiring-bob") { "bob" } else { "alice" };
                    let secs =
                        s.parse().map_err(|_| RealtimeError::Unauthenticated("bad".into()))?;
                    Ok(Verified::new(user(who), Some(Duration::from_secs(secs))))
                }
                _ => Err(RealtimeError::Unauthenticated("bad token".into())),
            },
        }
    }
}

/// One socket, as the hub's side sees it.
pub struct Conn {
    pub client: Arc<HubClient>,
    pub rx: ClientReceiver,
    pub rules: ServerConnection,
    /// The close being written: frames still to write before it (draining).
    pub closing: Option<(Close, usize)>,
}

pub struct Pair {
    pub hub: Arc<EventHub>,
    pub shared: Arc<ConnectionShared>,
    pub s: Session<ServerMessage>,
    pub now: Duration,
    pub conn: Option<Conn>,
    /// Frames the server sent stay in the transport (stalled link).
    pub stalled: bool,
    /// Bytes from the client are lost (a half-open link seen from the server).
    pub mute: bool,
    /// The client's WebSocket answers the server's pings (browsers and tungstenite do).
    pub answer_pings: bool,
    pub server_up: bool,
    pub token: TokenPolicy,
    pub events: Vec<(Duration, Event<ServerMessage>)>,
    pub connects: usize,
    pub sockets_open: usize,
    pub max_sockets_open: usize,
    /// Close codes the server wrote, with when.
    pub server_closes: Vec<(Duration, u16)>,
    /// The reasons of those closes.
    pub close_reasons: Vec<String>,
    /// WebSocket pings the server wrote.
    pub pings: Vec<Duration>,
    /// Every frame the client received, as text.
    pub received: Vec<String>,
    /// Who may read `repo:` channels (public by default: most tests are about the transport).
    pub repo_access: RepoAccess,
    /// Calls of the token provider.
    pub token_fetches: usize,
    /// Every frame the client sent, as text.
    pub sent: Vec<String>,
}

impl Pair {
    pub fn new(cfg: SessionConfig) -> Pair {
        Pair::with(cfg, ConnectionConfig::default(), Arc::new(EventHub::new()))
    }

    pub fn with_hub(cfg: SessionConfig, hub: Arc<EventHub>) -> Pair {
        Pair::with(cfg, ConnectionConfig::default(), hub)
    }

    pub fn with(cfg: SessionConfig, server: ConnectionConfig, hub: Arc<EventHub>) -> Pair {
        let shared = Arc::new(ConnectionShared::new(server));
        Pair {
            hub,
            shared,
            s: Session::new(cfg),
            now: Duration::ZERO,
            conn: None,
            stalled: false,
            mute: false,
            answer_pings: true,
            server_up: true,
            token: TokenPolicy::Good,
            events: Vec::new(),
            connects: 0,
            sockets_open: 0,
            max_sockets_open: 0,
            server_closes: Vec::new(),
            close_reasons: Vec::new(),
            pings: Vec::new(),
            received: Vec::new(),
            repo_access: RepoAccess::Public,
            token_fetches: 0,
            sent: Vec::new(),
        }
    }

    /// A socket opens on the hub's side (the welcome queued first).
    pub fn accept(&mut self) {
        let (client, rx) = self.hub.connect().unwrap();
        let welcome = self.hub.welcome(&client).encode();
        let rules = ServerConnection::new(self.shared.clone(), self.now, welcome);
        self.conn = Some(Conn { client, rx, rules, closing: None });
        self.sockets_open += 1;
        self.max_sockets_open = self.max_sockets_open.max(self.sockets_open);
        self.serve();
    }

    pub fn drop_socket(&mut self) {
        if let Some(c) = self.conn.take() {
            self.hub.disconnect(&c.client.id);
            self.sockets_open -= 1;
        }
    }

    /// A text frame from the client reaches the server (unless the link is mute).
    pub fn send_text(&mut self, text: &str) {
        if self.mute {
            return;
        }
        if let Some(c) = &mut self.conn {
            assert!(!c.rules.is_busy(), "the driver reads nothing while a request runs");
            c.rules.handle_text(self.now, text);
            self.serve();
        }
    }

    /// A WebSocket ping from the client reaches the server (its WebSocket layer answers it).
    pub fn send_ping(&mut self) {
        if let Some(c) = &mut self.conn {
            c.rules.handle_ping(self.now);
            self.serve();
        }
    }

    /// The server side: requests carried out, frames queued, the close started.
    fn serve(&mut self) {
        let now = self.now;
        let Some(c) = &mut self.conn else { return };
        loop {
            while let Some(frame) = c.rules.poll_transmit() {
                self.hub.send(&c.client, frame);
            }
            if let Some(close) = c.rules.poll_close() {
                let queued = if close.drain { c.rx.len() } else { 0 };
                c.closing.get_or_insert((close, queued));
            }
            let Some((request, id)) = c.rules.poll_request() else { break };
            let identity = c.rules.identity().clone();
            let authorizer = DefaultAuthorizer::new(self.repo_access);
            let run = execute(
                &*self.hub,
                &authorizer,
                &Tokens,
                &c.client,
                &identity,
                request,
                id.as_ref(),
            );
            let outcome = now_or_never(run).expect("the in-memory engine answers at once");
            c.rules.handle_outcome(now, outcome);
        }
        if c.rules.ping_due() {
            c.rules.ping_sent();
            self.pings.push(now);
            if self.answer_pings && !self.stalled && !self.mute {
                c.rules.handle_control(now);
            }
        }
    }

    /// Runs every input to quiescence at the current time.
    pub fn settle(&mut self) {
        for _ in 0..10_000 {
            let mut progressed = false;
            while let Some(a) = self.s.poll_action() {
                progressed = true;
                match a {
                    Action::FetchToken => {
                        self.token_fetches += 1;
                        let t = match self.token {
                            TokenPolicy::Expiring(s) => Ok(Some(format!("expiring:{s}"))),
                            TokenPolicy::Good => Ok(Some("good".into())),
                            TokenPolicy::Bad => Ok(Some("bad".into())),
                            TokenPolicy::Unauthorized => Err(TokenError::Unauthorized("no".into())),
                            TokenPolicy::Transient => Err(TokenError::Transient("down".into())),
                        };
                        self.s.handle_token(self.now, t);
                    }
                    Action::Connect => {
                        self.connects += 1;
                        assert!(self.conn.is_none(), "a second socket while one is open");
                        if self.server_up {
                            self.accept();
                            self.s.handle_open(self.now);
                        } else {
                            self.s.handle_close(self.now, 1006, "connection refused");
                        }
                    }
                    Action::Close { .. } => self.drop_socket(),
                }
            }
            while let Some(text) = self.s.poll_transmit() {
                progressed = true;
                self.sent.push(text.clone());
                self.send_text(&text);
            }
            if !self.stalled {
                progressed |= self.deliver();
            } else if let Some(c) = &mut self.conn {
                if !c.rx.is_empty() {
                    c.rules.handle_write_blocked(self.now);
                }
            }
            while let Some(e) = self.s.poll_event() {
                progressed = true;
                self.events.push((self.now, e));
            }
            if !progressed {
                return;
            }
        }
        panic!("livelock: the pair never settled");
    }

    /// Moves what the server wrote to the client: frames, then (after the frames a draining
    /// close waits for) the close. Whether anything moved.
    fn deliver(&mut self) -> bool {
        let now = self.now;
        let Some(c) = &mut self.conn else { return false };
        let mut frames = Vec::new();
        let mut queue_closed = None;
        loop {
            if let Some((_, left)) = &mut c.closing {
                if *left == 0 {
                    break;
                }
                *left -= 1;
            }
            match c.rx.try_recv() {
                Ok(f) => frames.push(f),
                Err(TryRecvError::Empty) => break,
                Err(_) => {
                    queue_closed = Some(c.rx.close_reason());
                    break;
                }
            }
        }
        let moved = !frames.is_empty();
        for f in frames {
            self.received.push(f.as_str().to_owned());
            let frame = decode_server_frame(f.as_str()).unwrap();
            self.s.handle_frame(now, Inbound::from_server_frame(frame));
        }
        let Some(c) = &mut self.conn else { return true };
        if moved {
            c.rules.handle_write_progress();
        }
        if let Some(reason) = queue_closed {
            c.rules.handle_queue_closed(now, reason);
            if let Some(close) = c.rules.poll_close() {
                c.closing.get_or_insert((close, 0));
            }
        }
        match c.closing {
            Some((close, 0)) => {
                self.server_closes.push((now, close.code.0));
                self.close_reasons.push(close.reason());
                self.drop_socket();
                self.s.handle_close(now, close.code.0, &close.reason());
                true
            }
            _ => moved,
        }
    }

    /// Advances virtual time to `until`, firing every timer (the session's and the server's) on
    /// the way.
    pub fn run_until(&mut self, until: Duration) {
        self.settle();
        loop {
            let server = self.conn.as_ref().map(|c| c.rules.poll_timeout());
            let next = [self.s.poll_timeout(), server].into_iter().flatten().min();
            match next {
                Some(t) if t <= until => {
                    self.now = self.now.max(t);
                    if self.s.poll_timeout().is_some_and(|t| t <= self.now) {
                        self.s.handle_timeout(self.now);
                    }
                    if let Some(c) = &mut self.conn {
                        if c.rules.is_done(self.now) {
                            self.drop_socket();
                            self.s.handle_close(self.now, 1006, "");
                        } else if c.rules.poll_timeout() <= self.now {
                            c.rules.handle_timeout(self.now);
                            assert!(
                                c.rules.is_closing() || c.rules.poll_timeout() > self.now,
                                "the server's timer fired and did not move on"
                            );
                            self.serve();
                        }
                    }
                    self.settle();
                }
                _ => break,
            }
        }
        self.now = self.now.max(until);
        self.settle();
    }

    pub fn advance(&mut self, d: Duration) {
        let t = self.now + d;
        self.run_until(t);
    }

    /// The server side kills the connection (TCP drop: code 1006).
    pub fn cut(&mut self) {
        if self.conn.is_some() {
            self.drop_socket();
            self.s.handle_close(self.now, 1006, "");
            self.settle();
        }
    }

    pub fn close_with(&mut self, code: u16, reason: &str) {
        if self.conn.is_some() {
            self.drop_socket();
            self.s.handle_close(self.now, code, reason);
            self.settle();
        }
    }

    /// The server shuts down: 1001 after the frames already queued.
    pub fn shutdown(&mut self) {
        if let Some(c) = &mut self.conn {
            c.rules.shutdown(self.now);
            self.serve();
            self.settle();
        }
    }

    /// The server restarts: 1012 with a `retry_after_ms` hint after the frames already queued.
    pub fn restart(&mut self, hint: Option<Duration>) {
        if let Some(c) = &mut self.conn {
            c.rules.restart(self.now, hint);
            self.serve();
            self.settle();
        }
    }

    pub fn publish(&self, ch: &str, kind: EventKind) -> u64 {
        self.hub.publish(ch, kind, serde_json::json!({})).unwrap().seq
    }

    pub fn messages(&self, sub: SubId) -> Vec<u64> {
        self.events
            .iter()
            .filter_map(|(_, e)| match e {
                Event::Message { sub: s, seq, .. } if *s == sub => *seq,
                _ => None,
            })
            .collect()
    }

    pub fn gaps(&self, sub: SubId) -> Vec<GapReason> {
        self.events
            .iter()
            .filter_map(|(_, e)| match e {
                Event::Gap { sub: s, reason, .. } if *s == sub => Some(*reason),
                _ => None,
            })
            .collect()
    }

    pub fn states(&self) -> Vec<String> {
        self.events
            .iter()
            .filter_map(|(_, e)| match e {
                Event::State { state, .. } => Some(state.name().to_owned()),
                _ => None,
            })
            .collect()
    }
}
