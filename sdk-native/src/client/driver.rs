//! The driver task: one tokio task that owns the socket, one sleep and the
//! [`Session`], and does only I/O around it. Every decision (when to connect, what to send,
//! which subscription gets what) is the session's.

use super::subscription::{Item, Mailbox};
use super::{HubError, Shared, StateInfo, TokenProvider};
use futures_util::{SinkExt, StreamExt};
use guts_realtime::session::{
    Action, ConnectionState, Event, Inbound, ReqId, RequestError, Session, SubId, SubState,
};
use guts_realtime::{decode_server_frame, ServerMessage, Since};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode as WsCloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tracing::{debug, info, info_span, warn, Instrument};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;
type BoxFut<T> = Pin<Box<dyn Future<Output = T> + Send>>;
type Payload = Arc<ServerMessage>;

/// What a [`Client`](super::Client) or [`Subscription`](super::Subscription) asks of the driver.
#[derive(Debug)]
pub(crate) enum Command {
    Subscribe(
        String,
        super::SubscribeOptions,
        usize,
        oneshot::Sender<Result<(SubId, String, Mailbox), super::Error>>,
    ),
    Unsubscribe(SubId),
    /// A request answered by an [`Event::Reply`].
    Request(Request, oneshot::Sender<Result<Payload, super::Error>>),
    /// A signal: channel, event, data as JSON text.
    Signal(String, String, String, oneshot::Sender<Result<(), super::Error>>),
    CheckLiveness,
    Close(oneshot::Sender<()>),
}

/// A request of the application.
#[derive(Debug)]
pub(crate) enum Request {
    Presence(String),
    History(String, Option<u32>),
    /// Channel, kind, data, idempotency key.
    Publish(String, guts_realtime::EventKind, serde_json::Value, Option<String>),
}

pub(crate) struct Driver {
    pub(crate) url: String,
    pub(crate) session: Session<Payload>,
    pub(crate) token: Option<TokenProvider>,
    pub(crate) ws_config: WebSocketConfig,
    pub(crate) tls: Option<Arc<rustls::ClientConfig>>,
    pub(crate) commands: mpsc::UnboundedReceiver<Command>,
    pub(crate) state: watch::Sender<StateInfo>,
    pub(crate) shared: Arc<Shared>,
}

impl Driver {
    pub(crate) async fn run(mut self) {
        let start = Instant::now();
        let now = move || start.elapsed();
        let mut ws: Option<Ws> = None;
        let mut connecting: Option<BoxFut<Result<Ws, String>>> = None;
        let mut fetching: Option<
            BoxFut<Result<Option<String>, guts_realtime::session::TokenError>>,
        > = None;
        let mut mailboxes: HashMap<SubId, Mailbox> = HashMap::new();
        let mut requests: HashMap<ReqId, oneshot::Sender<Result<Payload, super::Error>>> =
            HashMap::new();
        let mut closing: Option<oneshot::Sender<()>> = None;
        let mut commands_open = true;
        let sleep = tokio::time::sleep(Duration::from_secs(3600));
        tokio::pin!(sleep);
        self.session.connect(now());
        loop {
            // Drain every output of the session (str0m's rule: after each input).
            while let Some(action) = self.session.poll_action() {
                match action {
                    Action::FetchToken => {
                        let provider = self.token.clone();
                        fetching = Some(Box::pin(async move {
                            match provider {
                                Some(p) => p().await.map(Some),
                                None => Ok(None),
                            }
                        }));
                    }
                    Action::Connect => {
                        let url = self.url.clone();
                        let cfg = self.ws_config;
                        let tls = self.tls.clone().map(tokio_tungstenite::Connector::Rustls);
                        let span = info_span!("connect", url = %url);
                        connecting = Some(Box::pin(
                            async move {
                                tokio_tungstenite::connect_async_tls_with_config(
                                    url,
                                    Some(cfg),
                                    true,
                                    tls,
                                )
                                .await
                                .map(|(ws, _)| ws)
                                .map_err(|e| e.to_string())
                            }
                            .instrument(span),
                        ));
                    }
                    Action::Close { code, reason } => {
                        connecting = None;
                        if let Some(mut sock) = ws.take() {
                            let frame =
                                CloseFrame { code: WsCloseCode::from(code), reason: reason.into() };
                            let _ = tokio::time::timeout(
                                Duration::from_secs(1),
                                sock.close(Some(frame)),
                            )
                            .await;
                        }
                    }
                }
            }
            let mut wrote = false;
            while let Some(text) = self.session.poll_transmit() {
                if let Some(sock) = ws.as_mut() {
                    wrote = true;
                    if sock.feed(Message::text(text)).await.is_err() {
                        break;
                    }
                }
            }
            if wrote {
                if let Some(sock) = ws.as_mut() {
                    let limit = self.session.config().pong_timeout;
                    let ok = matches!(tokio::time::timeout(limit, sock.flush()).await, Ok(Ok(())));
                    if !ok {
                        ws = None;
                        self.session.handle_close(now(), 1006, "write failed or stalled");
                        continue;
                    }
                }
            }
            let mut terminal = false;
            while let Some(event) = self.session.poll_event() {
                if let Event::Reply { req, result } = event {
                    if let Some(reply) = requests.remove(&req) {
                        let result = result.map_err(|RequestError { code, message }| {
                            super::Error::Request { code, message }
                        });
                        let _ = reply.send(result);
                    }
                    continue;
                }
                terminal |= self.dispatch(event, &mut mailboxes);
            }
            if let Some(reply) = closing.take() {
                for m in mailboxes.values() {
                    m.end();
                }
                let _ = reply.send(());
                return;
            }
            if terminal {
                for m in mailboxes.values() {
                    m.end();
                }
            }
            if !commands_open && mailboxes.is_empty() {
                self.session.close(now());
                while let Some(Action::Close { code, reason }) = self.session.poll_action() {
                    if let Some(mut sock) = ws.take() {
                        let frame =
                            CloseFrame { code: WsCloseCode::from(code), reason: reason.into() };
                        let _ =
                            tokio::time::timeout(Duration::from_secs(1), sock.close(Some(frame)))
                                .await;
                    }
                }
                return;
            }
            if let Some(at) = self.session.poll_timeout() {
                let deadline = start + at;
                if sleep.deadline() != deadline {
                    sleep.as_mut().reset(deadline);
                }
            } else {
                sleep.as_mut().reset(Instant::now() + Duration::from_secs(3600));
            }

            tokio::select! {
                cmd = self.commands.recv(), if commands_open => match cmd {
                    None => commands_open = false,
                    Some(Command::Subscribe(channel, opts, buffer, reply)) => {
                        let _span = info_span!("subscribe", channel = %channel).entered();
                        let result = self
                            .session
                            .subscribe_with(&channel, opts.since, opts.presence)
                            .map(|id| {
                            let mb = Mailbox::new(buffer);
                            mailboxes.insert(id, mb.clone());
                            let canonical = self.session.channel_of(id).unwrap_or(&channel).to_owned();
                            debug!(%id, "subscribe");
                            (id, canonical, mb)
                        });
                        if let Err(Ok((id, _, _))) = reply.send(result.map_err(Into::into)) {
                            // The caller gave up (its future was dropped): nobody holds it.
                            mailboxes.remove(&id);
                            let _ = self.session.unsubscribe(id);
                        }
                    }
                    Some(Command::Unsubscribe(id)) => {
                        mailboxes.remove(&id);
                        let _ = self.session.unsubscribe(id);
                    }
                    Some(Command::Request(request, reply)) => {
                        let req = match request {
                            Request::Presence(channel) => self.session.presence(now(), &channel),
                            Request::History(channel, limit) => {
                                self.session.history(now(), &channel, limit)
                            }
                            Request::Publish(channel, kind, data, key) => {
                                self.session.publish(now(), &channel, kind, data, key)
                            }
                        };
                        match req {
                            Ok(req) => {
                                requests.insert(req, reply);
                            }
                            Err(e) => {
                                let _ = reply.send(Err(e.into()));
                            }
                        }
                    }
                    Some(Command::Signal(channel, event, data, reply)) => {
                        let sent = self.session.signal(&channel, &event, &data);
                        let _ = reply.send(sent.map_err(Into::into));
                    }
                    Some(Command::CheckLiveness) => self.session.check_liveness(now()),
                    Some(Command::Close(reply)) => {
                        self.session.close(now());
                        closing = Some(reply);
                    }
                },
                token = async { fetching.as_mut().expect("guarded").await }, if fetching.is_some() => {
                    fetching = None;
                    self.session.handle_token(now(), token);
                }
                res = async { connecting.as_mut().expect("guarded").await }, if connecting.is_some() => {
                    connecting = None;
                    match res {
                        Ok(sock) => {
                            ws = Some(sock);
                            self.session.handle_open(now());
                        }
                        Err(e) => {
                            debug!(error = %e, "connect failed");
                            self.session.handle_close(now(), 1006, &e);
                        }
                    }
                }
                msg = async { ws.as_mut().expect("guarded").next().await }, if ws.is_some() => {
                    let t = now();
                    match msg {
                        Some(Ok(Message::Text(text))) => {
                            let inbound = match decode_server_frame(text.as_str()) {
                                Ok(frame) => Inbound::from_server_frame(frame).map(Arc::new),
                                Err(e) => {
                                    warn!(error = %e, "undecodable frame ignored");
                                    Inbound::Other
                                }
                            };
                            self.session.handle_frame(t, inbound);
                        }
                        Some(Ok(Message::Close(frame))) => {
                            ws = None;
                            let (code, reason) = frame
                                .map(|f| (u16::from(f.code), f.reason.to_string()))
                                .unwrap_or((1005, String::new()));
                            self.session.handle_close(t, code, &reason);
                        }
                        Some(Ok(_)) => self.session.handle_frame(t, Inbound::Other),
                        Some(Err(e)) => {
                            ws = None;
                            self.session.handle_close(t, 1006, &e.to_string());
                        }
                        None => {
                            ws = None;
                            self.session.handle_close(t, 1006, "connection closed");
                        }
                    }
                }
                () = &mut sleep => self.session.handle_timeout(now()),
            }
        }
    }

    /// The session's position on `channel`, as a resume point.
    fn position_of(&self, channel: &str) -> Option<Since> {
        let (seq, epoch) = self.session.position(channel)?;
        Some(Since { seq, epoch: epoch.to_owned() })
    }

    /// Hands one session event to the application. Returns whether the session stopped for good.
    fn dispatch(&mut self, event: Event<Payload>, mailboxes: &mut HashMap<SubId, Mailbox>) -> bool {
        match event {
            Event::State { state, reason, code } => {
                match &state {
                    ConnectionState::Reconnecting { attempt, retry_in } => {
                        info!(attempt, retry_in_ms = retry_in.as_millis() as u64, ?code, %reason, "reconnecting")
                    }
                    s => info!(state = s.name(), ?code, %reason, "connection state"),
                }
                let terminal = state == ConnectionState::Closed;
                if state == ConnectionState::Connected {
                    self.shared.connected_once.store(true, std::sync::atomic::Ordering::Relaxed);
                }
                if terminal {
                    if let Ok(mut r) = self.shared.closed_reason.lock() {
                        *r = Some(reason.clone());
                    }
                    if let Ok(mut c) = self.shared.closed_code.lock() {
                        *c = code;
                    }
                }
                let _ = self.state.send(StateInfo { state, reason, code });
                terminal
            }
            Event::Subscription { sub, state } => {
                let channel = self.session.channel_of(sub).unwrap_or_default().to_owned();
                if let Some(mb) = mailboxes.get(&sub) {
                    match state {
                        SubState::Subscribed { recovered } => {
                            let at = self.position_of(&channel);
                            mb.push_at(Item::Subscribed { recovered }, false, at)
                        }
                        SubState::Failed { code, message } => {
                            warn!(%channel, ?code, %message, "subscription refused");
                            mb.push(Item::Failed { code, message }, false);
                        }
                        SubState::Subscribing | SubState::Unsubscribed => {}
                    }
                }
                false
            }
            Event::Message { sub, payload, .. } => {
                if let Some(mb) = mailboxes.get(&sub) {
                    let msg = Arc::try_unwrap(payload).unwrap_or_else(|a| (*a).clone());
                    match msg {
                        ServerMessage::Event(e) => mb.push(Item::Event(e), true),
                        ServerMessage::UnknownEvent(e) => mb.push(Item::UnknownEvent(e), true),
                        ServerMessage::Notification { notification, seq, .. } => {
                            mb.push(Item::Notification { notification, seq }, true)
                        }
                        _ => {}
                    }
                }
                false
            }
            Event::Gap { sub, last_seq, resume_seq, reason } => {
                let channel = self.session.channel_of(sub).unwrap_or_default().to_owned();
                info!(%channel, ?reason, ?last_seq, ?resume_seq, "gap");
                if let Some(mb) = mailboxes.get(&sub) {
                    let at = self.position_of(&channel);
                    mb.push_at(Item::Gap { last_seq, resume_seq, reason }, false, at);
                }
                false
            }
            Event::Authenticated { user } => {
                debug!(%user, "authenticated");
                false
            }
            Event::Error { code, message } => {
                warn!(?code, %message, "error from hub");
                // Nobody listening is fine: the log line above still says it.
                let _ = self.shared.errors.send(HubError { code, message });
                false
            }
            Event::Presence { sub } => {
                let members = self.session.channel_of(sub).and_then(|ch| self.session.members(ch));
                if let (Some(mb), Some(members)) = (mailboxes.get(&sub), members) {
                    let members = members
                        .iter()
                        .map(|(user, n)| guts_realtime::PresenceMember {
                            user: user.clone(),
                            connections: *n,
                        })
                        .collect();
                    mb.push(Item::Presence(members), false);
                }
                false
            }
            Event::Member { sub, user, joined } => {
                if let Some(mb) = mailboxes.get(&sub) {
                    mb.push(if joined { Item::Join(user) } else { Item::Leave(user) }, false);
                }
                false
            }
            Event::Signal { sub, payload } => {
                if let (Some(mb), ServerMessage::Signal { event, data, user, .. }) =
                    (mailboxes.get(&sub), &*payload)
                {
                    let item = Item::Signal {
                        event: event.clone(),
                        data: data.clone(),
                        user: user.clone(),
                    };
                    mb.push(item, true);
                }
                false
            }
            Event::Reply { .. } => false,
        }
    }
}
