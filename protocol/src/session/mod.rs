//! The sans-IO client session: the one implementation of connect, auth, heartbeat, backoff,
//! resubscribe, recovery and dispatch that every SDK driver runs.
//!
//! It performs no I/O, reads no clock and draws no entropy: time is the `now` argument (a
//! [`Duration`] since any origin the driver picks, monotonic), randomness comes from
//! [`SessionConfig::rng_seed`]. Inputs are `handle_*` calls (what arrived) and commands (what the
//! application wants); outputs are drained with `poll_*`.
//!
//! # The driver loop
//!
//! After **every** input or command, drain [`Session::poll_action`], [`Session::poll_transmit`]
//! and [`Session::poll_event`] until each returns `None`, then sleep until
//! [`Session::poll_timeout`] (or the next I/O) and call [`Session::handle_timeout`].
//!
//! ```
//! use guts_realtime::session::{Action, Event, Inbound, Session, SessionConfig};
//! use std::time::Duration;
//!
//! // A toy driver: a "socket" that opens at once and a server that answers by hand.
//! let mut s: Session<String> = Session::new(SessionConfig::default());
//! let sub = s.subscribe("repo:alice/app").unwrap();
//! let mut now = Duration::ZERO;
//! s.connect(now);
//! while let Some(action) = s.poll_action() {
//!     if action == Action::Connect {
//!         s.handle_open(now); // the socket opened
//!     }
//! }
//! let sent: Vec<String> = std::iter::from_fn(|| s.poll_transmit()).collect();
//! assert_eq!(sent, [r#"{"type":"subscribe","channel":"repo:alice/app","id":1}"#]);
//! now += Duration::from_millis(5);
//! s.handle_frame(now, Inbound::Welcome { epoch: "e1".into() });
//! s.handle_frame(now, Inbound::Subscribed {
//!     id: Some(1), channel: "repo:alice/app".into(), seq: Some(0), recovered: None,
//! });
//! s.handle_frame(now, Inbound::Event {
//!     channel: "repo:alice/app".into(), kind: None, seq: Some(1), item: None,
//!     payload: "hello".to_string(),
//! });
//! let got: Vec<_> = std::iter::from_fn(|| s.poll_event())
//!     .filter_map(|e| match e { Event::Message { sub: id, payload, .. } => Some((id, payload)), _ => None })
//!     .collect();
//! assert_eq!(got, [(sub, "hello".to_string())]);
//! // Idle for 20 s: the session wants to ping.
//! assert_eq!(s.poll_timeout(), Some(now + Duration::from_secs(20)));
//! ```
//!
//! # Guarantees
//! - At most one socket at a time: `Connect` is only asked when the previous socket is gone.
//! - Every desired channel is subscribed exactly once per connection, and none that is not.
//! - No handle receives a seq twice; a lost position is reported as [`Event::Gap`], never silently.
//! - Bounded: at most [`SessionConfig::max_channels`] channels and
//!   [`SessionConfig::max_handles`] handles; the outbox holds at most one command per channel plus
//!   auth and ping; the event queue holds what one input produced (drain it after every input).

// In the browser bundle: no formatting macros (clippy.toml).
#![warn(clippy::disallowed_macros)]

mod backoff;
mod config;
mod io;
mod presence;
mod requests;
#[cfg(test)]
mod tests;
mod vecmap;

pub use backoff::{ceiling as backoff_ceiling, delay as backoff_delay, Rng};
pub use config::SessionConfig;
pub use io::{
    Action, ConnectionState, Event, GapReason, Inbound, ReqId, RequestError, SessionError, SubId,
    SubState, TokenError,
};

use crate::close::{CloseAction, CloseCode};
use crate::error::ErrorCode;
use crate::prelude::*;
use crate::subscription::Channel;
use crate::wire::{ClientCommand, ClientFrame, RequestId, Since};
use core::time::Duration;
use vecmap::{VecMap, VecSet};

/// Where the connection is, with the deadlines that apply.
#[derive(Debug, Clone, PartialEq)]
enum Phase {
    Idle,
    FetchingToken { deadline: Duration },
    Opening { deadline: Duration },
    Handshake { deadline: Duration, welcomed: bool, authed: bool },
    Connected { since: Duration },
    Waiting { until: Duration },
    Closed,
}

/// The open socket's liveness bookkeeping.
#[derive(Debug, Clone)]
struct Link {
    last_rx: Duration,
    ping_sent: Option<Duration>,
}

/// What the hub knows of a channel on the current socket.
#[derive(Debug, Clone, PartialEq)]
enum Remote {
    /// Not subscribed on this socket.
    None,
    /// Subscribe in flight (id, the `since` it carried).
    Subscribing(u64, Option<Since>),
    /// Confirmed.
    Subscribed,
    /// Unsubscribe in flight.
    Unsubscribing(u64),
    /// Refused by the hub; not retried until subscribed again.
    Failed,
}

#[derive(Debug, Clone)]
struct ChannelSub {
    channel: Channel,
    handles: VecSet<SubId>,
    /// The handles that asked for presence (a subset of `handles`).
    watchers: VecSet<SubId>,
    /// The last members of the channel's presence (kept across a reconnect, so the next list
    /// is reported as the changes it brings).
    members: Option<Vec<(String, u32)>>,
    remote: Remote,
    /// Whether the subscribe sent on this socket asked for presence.
    remote_presence: bool,
    /// Last seq delivered and the epoch it belongs to.
    last_seq: Option<u64>,
    epoch: Option<String>,
    /// Whether this channel was ever confirmed (so a resubscribe without a position is a gap).
    was_subscribed: bool,
    /// The `recovered` outcome of the last confirmed subscribe.
    recovered: Option<bool>,
}

impl ChannelSub {
    fn desired(&self) -> bool {
        !self.handles.is_empty() && !matches!(self.remote, Remote::Failed)
    }

    fn wants_presence(&self) -> bool {
        !self.watchers.is_empty()
    }
}

/// The sans-IO client session. `P` is the payload handed to the application with each event
/// (a decoded message natively, a JS object in the browser).
#[derive(Debug)]
pub struct Session<P> {
    cfg: SessionConfig,
    rng: Rng,
    phase: Phase,
    attempt: u32,
    link: Option<Link>,
    token: Option<String>,
    epoch: Option<String>,
    channels: VecMap<String, ChannelSub>,
    handles: VecMap<SubId, String>,
    next_handle: u64,
    next_id: u64,
    auth_id: Option<u64>,
    /// Queues of a few entries (what one input produced), taken from the front: `Vec`s, which
    /// cost the browser bundle far less code than a `VecDeque` per element type.
    outbox: Vec<String>,
    actions: Vec<Action>,
    events: Vec<Event<P>>,
    state: ConnectionState,
    /// The channel of the last event, parsed: a run of events on one channel parses it once.
    last_route: Option<(String, Channel)>,
    /// When to fetch a new token for the open socket (before the current one expires).
    refresh_at: Option<Duration>,
    /// A token fetched for the open socket is awaited.
    refreshing: bool,
    /// Requests waiting for their answer.
    requests: Vec<requests::Pending>,
}

impl<P: Clone> Session<P> {
    /// A session in state [`ConnectionState::Idle`]; call [`Session::connect`] to start.
    pub fn new(cfg: SessionConfig) -> Self {
        Session {
            rng: Rng::new(cfg.rng_seed),
            cfg,
            phase: Phase::Idle,
            attempt: 0,
            link: None,
            token: None,
            epoch: None,
            channels: VecMap::new(),
            handles: VecMap::new(),
            next_handle: 1,
            next_id: 1,
            auth_id: None,
            outbox: Vec::new(),
            actions: Vec::new(),
            events: Vec::new(),
            state: ConnectionState::Idle,
            last_route: None,
            refresh_at: None,
            refreshing: false,
            requests: Vec::new(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &SessionConfig {
        &self.cfg
    }

    /// The connection state.
    pub fn state(&self) -> &ConnectionState {
        &self.state
    }

    /// The hub's epoch, as last announced.
    pub fn epoch(&self) -> Option<&str> {
        self.epoch.as_deref()
    }

    /// The channel of a handle.
    pub fn channel_of(&self, sub: SubId) -> Option<&str> {
        self.handles.get(&sub).map(String::as_str)
    }

    /// The state of a handle.
    pub fn sub_state(&self, sub: SubId) -> Option<SubState> {
        let ch = self.channels.get(self.handles.get(&sub)?)?;
        Some(self.remote_state(ch))
    }

    /// The last seq delivered on a channel (the position a resubscribe resumes from).
    pub fn position(&self, channel: &str) -> Option<(u64, &str)> {
        let ch = self.channels.get(channel)?;
        Some((ch.last_seq?, ch.epoch.as_deref()?))
    }

    /// Channels the application wants.
    pub fn desired_channels(&self) -> impl Iterator<Item = &str> {
        self.channels.iter().filter(|(_, c)| c.desired()).map(|(k, _)| k.as_str())
    }

    /// Channels the hub confirmed on the current socket.
    pub fn confirmed_channels(&self) -> impl Iterator<Item = &str> {
        self.channels
            .iter()
            .filter(|(_, c)| matches!(c.remote, Remote::Subscribed))
            .map(|(k, _)| k.as_str())
    }

    /// Whether a socket is open (handshaking or connected).
    pub fn is_open(&self) -> bool {
        self.link.is_some()
    }

    // ---- outputs ----------------------------------------------------------------------------

    /// The next thing the driver must do.
    pub fn poll_action(&mut self) -> Option<Action> {
        (!self.actions.is_empty()).then(|| self.actions.remove(0))
    }

    /// The next text frame to send on the socket.
    pub fn poll_transmit(&mut self) -> Option<String> {
        (!self.outbox.is_empty()).then(|| self.outbox.remove(0))
    }

    /// The next thing the application should see.
    pub fn poll_event(&mut self) -> Option<Event<P>> {
        (!self.events.is_empty()).then(|| self.events.remove(0))
    }

    /// When [`Session::handle_timeout`] must be called next (`None`: no timer).
    pub fn poll_timeout(&self) -> Option<Duration> {
        let phase = match &self.phase {
            Phase::FetchingToken { deadline }
            | Phase::Opening { deadline }
            | Phase::Handshake { deadline, .. } => Some(*deadline),
            Phase::Waiting { until } => Some(*until),
            Phase::Connected { .. } => self.link.as_ref().map(|l| {
                let link = match l.ping_sent {
                    Some(sent) => sent + self.cfg.pong_timeout,
                    None => l.last_rx + self.cfg.ping_interval,
                };
                self.refresh_at.map_or(link, |r| r.min(link))
            }),
            Phase::Idle | Phase::Closed => None,
        };
        match (phase, self.request_deadline()) {
            (Some(p), Some(r)) => Some(p.min(r)),
            (p, r) => p.or(r),
        }
    }

    // ---- application commands ---------------------------------------------------------------

    /// Starts connecting (from `Idle` or `Closed`); a no-op otherwise.
    pub fn connect(&mut self, now: Duration) {
        if matches!(self.phase, Phase::Idle | Phase::Closed) {
            self.attempt = 0;
            self.start_attempt(now);
        }
    }

    /// Closes for good: the socket is closed with 1000 and nothing reconnects until
    /// [`Session::connect`]. Subscriptions are kept and resubscribed on the next connect.
    pub fn close(&mut self, now: Duration) {
        let _ = now;
        if matches!(self.phase, Phase::Closed) {
            return;
        }
        if self.link.is_some() || matches!(self.phase, Phase::Opening { .. }) {
            self.actions.push(Action::Close { code: 1000, reason: "client closed".into() });
        }
        self.drop_link();
        self.phase = Phase::Closed;
        self.fail_requests("closed by the application");
        self.set_state(ConnectionState::Closed, "closed by the application", None);
    }

    /// Subscribes to a channel; returns the handle whose events and state changes follow.
    /// Works in any state: while disconnected the wish is kept and sent on connect.
    ///
    /// # Errors
    /// [`SessionError::InvalidChannel`] (checked here, never sent), or
    /// [`SessionError::SubscriptionLimit`] past [`SessionConfig::max_channels`] channels or
    /// [`SessionConfig::max_handles`] handles.
    pub fn subscribe(&mut self, channel: &str) -> Result<SubId, SessionError> {
        self.subscribe_with(channel, None, false)
    }

    /// As [`Session::subscribe`], with two options:
    /// - `since`: resume from a position saved earlier (e.g. by a worker before it restarted)
    ///   when the channel has no position yet: the hub replays what came after it
    ///   (`recovered: true`), or the handle gets an [`Event::Gap`];
    /// - `presence`: join the channel's presence; the handle gets [`Event::Presence`] when the
    ///   member list ([`Session::members`]) is there, then an [`Event::Member`] for each change.
    ///
    /// # Errors
    /// As [`Session::subscribe`].
    pub fn subscribe_with(
        &mut self,
        channel: &str,
        since: Option<Since>,
        presence: bool,
    ) -> Result<SubId, SessionError> {
        let ch = Channel::try_parse(channel).map_err(SessionError::InvalidChannel)?;
        // The grammar is strict: a valid channel string is its own canonical form.
        let key = channel.to_owned();
        if self.handles.len() >= self.cfg.max_handles {
            return Err(SessionError::SubscriptionLimit(self.cfg.max_handles));
        }
        if !self.channels.contains_key(&key)
            && self.channels.values().filter(|c| c.desired()).count() >= self.cfg.max_channels
        {
            return Err(SessionError::SubscriptionLimit(self.cfg.max_channels));
        }
        let sub = SubId(self.next_handle);
        self.next_handle += 1;
        self.handles.insert(sub, key.clone());
        let entry = self.channels.get_or_insert_with(key.clone(), || ChannelSub {
            channel: ch,
            handles: VecSet::new(),
            watchers: VecSet::new(),
            members: None,
            remote: Remote::None,
            remote_presence: false,
            last_seq: None,
            epoch: None,
            was_subscribed: false,
            recovered: None,
        });
        entry.handles.insert(sub);
        if presence {
            entry.watchers.insert(sub);
        }
        if matches!(entry.remote, Remote::Failed) {
            entry.remote = Remote::None;
        }
        if let (Some(since), None) = (since, entry.last_seq) {
            entry.last_seq = Some(since.seq);
            entry.epoch = Some(since.epoch);
            entry.was_subscribed = true;
        }
        let state = match self.channels.get(&key) {
            Some(ch) => self.remote_state(ch),
            None => SubState::Subscribing,
        };
        self.events.push(Event::Subscription { sub, state });
        if presence {
            self.presence_to_new_watcher(&key, sub);
        }
        self.sync_channel(&key);
        Ok(sub)
    }

    /// Drops a handle. When the last handle of a channel goes, the channel is unsubscribed.
    ///
    /// # Errors
    /// [`SessionError::UnknownSubscription`].
    pub fn unsubscribe(&mut self, sub: SubId) -> Result<(), SessionError> {
        let key = self.handles.remove(&sub).ok_or(SessionError::UnknownSubscription(sub))?;
        if let Some(ch) = self.channels.get_mut(&key) {
            ch.handles.remove(&sub);
            ch.watchers.remove(&sub);
            if !ch.wants_presence() {
                ch.members = None;
            }
        }
        self.events.push(Event::Subscription { sub, state: SubState::Unsubscribed });
        self.sync_channel(&key);
        Ok(())
    }

    /// Sets the token to send on the next connect (e.g. from a token that arrived by other
    /// means). A token provider ([`Action::FetchToken`]) still runs before every connect.
    pub fn set_token(&mut self, token: Option<String>) {
        self.token = token;
    }

    /// Verify liveness now (page became visible, network changed): ping at once when connected,
    /// retry at once when waiting to reconnect.
    pub fn check_liveness(&mut self, now: Duration) {
        match self.phase {
            Phase::Connected { .. } => {
                if let Some(link) = &mut self.link {
                    if link.ping_sent.is_none() {
                        link.ping_sent = Some(now);
                        self.send(ClientCommand::Ping, None);
                    }
                }
            }
            Phase::Waiting { .. } => self.start_attempt(now),
            _ => {}
        }
    }

    /// The network went offline (`false`: close the socket, wait) or online (`true`: reconnect
    /// now instead of waiting out the backoff).
    pub fn handle_network(&mut self, now: Duration, online: bool) {
        if online {
            if let Phase::Waiting { .. } = self.phase {
                self.start_attempt(now);
            }
        } else {
            self.release(now, "network offline");
        }
    }

    /// Gives the socket up without giving up the connection (the page is being hidden or frozen:
    /// `pagehide`): the socket is closed with 1000 and `reason`, and the session waits as after a
    /// drop. [`Session::check_liveness`] (`pageshow`), `handle_network(now, true)` or the backoff
    /// timer reconnects. A no-op when no socket is open or opening.
    pub fn release(&mut self, now: Duration, reason: &str) {
        if self.link.is_some() || matches!(self.phase, Phase::Opening { .. }) {
            self.actions.push(Action::Close { code: 1000, reason: reason.into() });
            self.lose_link(now, reason, None, CloseAction::Reconnect);
        }
    }

    // ---- inputs -----------------------------------------------------------------------------

    /// The driver's answer to [`Action::FetchToken`]: `Ok(None)` connects anonymously. Asked
    /// while connected (the token is about to expire), a token is sent on the open socket as
    /// `auth`; no token, or a failure, leaves the socket as it is (a transient failure is asked
    /// again 5 s later) until the hub closes it at expiry with 4002.
    pub fn handle_token(&mut self, now: Duration, token: Result<Option<String>, TokenError>) {
        if self.refreshing && matches!(self.phase, Phase::Connected { .. }) {
            self.refreshing = false;
            match token {
                Ok(t @ Some(_)) => {
                    self.token = t;
                    self.send_auth();
                }
                Ok(None) | Err(TokenError::Unauthorized(_)) => {}
                Err(TokenError::Transient(_)) => {
                    self.refresh_at = Some(now.saturating_add(Duration::from_secs(5)));
                }
            }
            return;
        }
        if !matches!(self.phase, Phase::FetchingToken { .. }) {
            return;
        }
        match token {
            Ok(t) => {
                self.token = t;
                self.open(now);
            }
            Err(TokenError::Unauthorized(why)) => {
                self.phase = Phase::Closed;
                let why = crate::frame::cat(&["unauthorized: ", &why]);
                self.fail_requests(&why);
                self.set_state(ConnectionState::Closed, &why, None);
            }
            Err(TokenError::Transient(why)) => {
                let why = crate::frame::cat(&["token provider failed: ", &why]);
                self.schedule_reconnect(now, &why, None, None)
            }
        }
    }

    /// The socket asked for with [`Action::Connect`] is open.
    pub fn handle_open(&mut self, now: Duration) {
        let Phase::Opening { deadline } = self.phase else { return };
        self.link = Some(Link { last_rx: now, ping_sent: None });
        self.phase = Phase::Handshake { deadline, welcomed: false, authed: self.token.is_none() };
        self.auth_id = None;
        if self.token.is_some() {
            self.send_auth();
            self.set_state(ConnectionState::Authenticating, "socket open, token sent", None);
        }
        // Pipeline the subscriptions behind the auth frame: the hub handles frames in order.
        for ch in self.channels.values_mut() {
            if !matches!(ch.remote, Remote::Failed) {
                ch.remote = Remote::None;
            }
        }
        // By index (no copy of the key list): `sync_channel` may remove the channel it syncs,
        // and then the next one takes its index.
        let mut i = 0;
        while let Some(key) = self.channels.key_at(i).cloned() {
            self.sync_channel(&key);
            if self.channels.key_at(i) == Some(&key) {
                i += 1;
            }
        }
        self.send_requests();
    }

    /// The socket closed (or failed to open). `code` is 1006 when there was no close frame.
    pub fn handle_close(&mut self, now: Duration, code: u16, reason: &str) {
        if self.link.is_none() && !matches!(self.phase, Phase::Opening { .. }) {
            return;
        }
        let action = CloseCode(code).action(reason);
        // "closed: <reason or code name> (<code>)", without core::fmt.
        let mut why = String::with_capacity(reason.len() + 24);
        why.push_str("closed: ");
        why.push_str(if reason.is_empty() { CloseCode(code).name() } else { reason });
        why.push_str(" (");
        crate::frame::push_u64(&mut why, code.into());
        why.push(')');
        self.lose_link(now, &why, Some(code), action);
    }

    /// A frame arrived on the open socket.
    pub fn handle_frame(&mut self, now: Duration, frame: Inbound<P>) {
        let Some(link) = &mut self.link else { return };
        link.last_rx = now;
        link.ping_sent = None;
        match frame {
            Inbound::Welcome { epoch } => {
                self.epoch = Some(epoch);
                if let Phase::Handshake { welcomed, .. } = &mut self.phase {
                    *welcomed = true;
                }
                self.maybe_connected(now);
            }
            Inbound::Authenticated { user, expires_in, .. } => {
                if let Phase::Handshake { authed, .. } = &mut self.phase {
                    *authed = true;
                }
                self.refresh_at = expires_in.filter(|_| self.cfg.auth).map(|s| {
                    // exp − max(10 s, 10 % of the lifetime), and not sooner than in a second
                    // (in whole seconds: no `Duration` arithmetic in the bundle).
                    let lead = (s / 10).max(10);
                    now.saturating_add(Duration::from_secs(s.saturating_sub(lead).max(1)))
                });
                self.events.push(Event::Authenticated { user });
                self.maybe_connected(now);
            }
            Inbound::Subscribed { id, channel, seq, recovered } => {
                self.on_subscribed(id, &channel, seq, recovered)
            }
            Inbound::Unsubscribed { id, channel, reason: None } => {
                self.on_unsubscribed(id, &channel)
            }
            Inbound::Unsubscribed { channel, reason: Some(reason), .. } => {
                self.on_ended(&channel, reason)
            }
            Inbound::Pong { .. } | Inbound::Other => {}
            Inbound::Error { id, code, message } => self.on_error(now, id, code, message),
            Inbound::Event { channel, kind, seq, item, payload } => {
                self.on_event(channel, kind, seq, item, payload)
            }
            Inbound::Presence { id, channel, members, payload } => {
                if !self.answer(id, payload) {
                    self.on_members(&channel, members);
                }
            }
            Inbound::Join { channel, user } => self.on_join(&channel, user, true),
            Inbound::Leave { channel, user } => self.on_join(&channel, user, false),
            Inbound::Signal { channel, payload } => {
                if let Some(ch) = self.channels.get(&channel) {
                    for &sub in ch.handles.iter() {
                        self.events.push(Event::Signal { sub, payload: payload.clone() });
                    }
                }
            }
            Inbound::History { id, payload } | Inbound::Published { id, payload } => {
                self.answer(id, payload);
            }
        }
    }

    /// A deadline from [`Session::poll_timeout`] passed (extra calls are harmless). Deadlines
    /// are compared with `now`, so a late wake-up (a throttled background tab) still acts
    /// correctly.
    pub fn handle_timeout(&mut self, now: Duration) {
        self.expire_requests(now);
        match self.phase.clone() {
            Phase::FetchingToken { deadline } | Phase::Opening { deadline } if now >= deadline => {
                if matches!(self.phase, Phase::Opening { .. }) {
                    self.actions
                        .push(Action::Close { code: 4000, reason: "connect timeout".into() });
                }
                self.lose_link(now, "connect timeout", None, CloseAction::Reconnect);
            }
            Phase::Handshake { deadline, .. } if now >= deadline => {
                self.actions.push(Action::Close { code: 4000, reason: "handshake timeout".into() });
                self.lose_link(now, "handshake timeout", None, CloseAction::Reconnect);
            }
            Phase::Waiting { until } if now >= until => self.start_attempt(now),
            Phase::Connected { .. } => {
                if self.refresh_at.is_some_and(|r| now >= r) {
                    self.refresh_at = None;
                    self.refreshing = true;
                    self.actions.push(Action::FetchToken);
                }
                let Some(link) = &mut self.link else { return };
                match link.ping_sent {
                    Some(sent) if now >= sent + self.cfg.pong_timeout => {
                        self.actions.push(Action::Close {
                            code: CloseCode::HEARTBEAT_TIMEOUT.0,
                            reason: "heartbeat timeout".into(),
                        });
                        self.lose_link(
                            now,
                            "heartbeat timeout: nothing received after a ping",
                            Some(CloseCode::HEARTBEAT_TIMEOUT.0),
                            CloseAction::Reconnect,
                        );
                    }
                    None if now >= link.last_rx + self.cfg.ping_interval => {
                        link.ping_sent = Some(now);
                        self.send(ClientCommand::Ping, None);
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }

    // ---- internals --------------------------------------------------------------------------

    fn set_state(&mut self, state: ConnectionState, reason: &str, code: Option<u16>) {
        self.state = state.clone();
        self.events.push(Event::State { state, reason: reason.to_owned(), code });
    }

    fn start_attempt(&mut self, now: Duration) {
        let deadline = now + self.cfg.connect_timeout;
        self.set_state(
            ConnectionState::Connecting { attempt: self.attempt },
            if self.attempt == 0 { "connecting" } else { "reconnecting" },
            None,
        );
        if self.cfg.auth {
            self.phase = Phase::FetchingToken { deadline };
            self.actions.push(Action::FetchToken);
        } else {
            self.open(now);
        }
    }

    fn open(&mut self, now: Duration) {
        let deadline = match self.phase {
            Phase::FetchingToken { deadline } => deadline,
            _ => now + self.cfg.connect_timeout,
        };
        self.phase = Phase::Opening { deadline };
        self.actions.push(Action::Connect);
    }

    fn maybe_connected(&mut self, now: Duration) {
        if let Phase::Handshake { welcomed: true, authed: true, .. } = self.phase {
            self.phase = Phase::Connected { since: now };
            self.set_state(ConnectionState::Connected, "connected", None);
        }
    }

    fn drop_link(&mut self) {
        self.link = None;
        self.outbox.clear();
        self.auth_id = None;
        self.refresh_at = None;
        self.refreshing = false;
        self.requests_unsent();
        let events = &mut self.events;
        self.channels.retain(|_, ch| {
            if ch.handles.is_empty() {
                return false;
            }
            if matches!(ch.remote, Remote::Failed) {
                return true;
            }
            let was_live = matches!(ch.remote, Remote::Subscribed);
            ch.remote = Remote::None;
            if was_live {
                for &sub in ch.handles.iter() {
                    events.push(Event::Subscription { sub, state: SubState::Subscribing });
                }
            }
            true
        });
    }

    fn lose_link(&mut self, now: Duration, why: &str, code: Option<u16>, action: CloseAction) {
        if let Phase::Connected { since } = self.phase {
            if now.saturating_sub(since) >= self.cfg.stable_after {
                self.attempt = 0;
            }
        }
        self.drop_link();
        match action {
            CloseAction::Terminal => {
                self.phase = Phase::Closed;
                self.fail_requests(why);
                self.set_state(ConnectionState::Closed, why, code);
            }
            CloseAction::Reconnect => self.schedule_reconnect(now, why, code, None),
            CloseAction::ReconnectAfter(d) => self.schedule_reconnect(now, why, code, Some(d)),
        }
    }

    fn schedule_reconnect(
        &mut self,
        now: Duration,
        why: &str,
        code: Option<u16>,
        hint: Option<Duration>,
    ) {
        let jitter = backoff::delay(
            self.cfg.backoff_base,
            self.cfg.backoff_max,
            self.attempt,
            &mut self.rng,
        );
        let retry_in = hint.map_or(jitter, |h| h + jitter);
        self.attempt = self.attempt.saturating_add(1);
        self.phase = Phase::Waiting { until: now + retry_in };
        self.set_state(
            ConnectionState::Reconnecting { attempt: self.attempt, retry_in },
            why,
            code,
        );
    }

    /// Queues a command; returns its id.
    fn send(&mut self, command: ClientCommand, since: Option<Since>) -> u64 {
        self.send_frame(command, since, false)
    }

    /// Queues a command with its envelope; returns its id.
    fn send_frame(&mut self, command: ClientCommand, since: Option<Since>, presence: bool) -> u64 {
        let id = self.take_id();
        let frame = ClientFrame { command, since, presence, id: Some(RequestId::Num(id)) };
        self.outbox.push(frame.encode());
        id
    }

    /// A fresh command id.
    fn take_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    fn remote_state(&self, ch: &ChannelSub) -> SubState {
        match ch.remote {
            Remote::Subscribed => SubState::Subscribed { recovered: ch.recovered },
            Remote::Failed => SubState::Failed { code: None, message: "refused by the hub".into() },
            _ => SubState::Subscribing,
        }
    }

    /// Brings the hub's view of one channel in line with the application's wish.
    fn sync_channel(&mut self, key: &str) {
        if self.link.is_none() {
            if self.channels.get(key).is_some_and(|c| c.handles.is_empty()) {
                self.channels.remove(key);
            }
            return;
        }
        let Some(ch) = self.channels.get(key) else { return };
        let desired = ch.desired();
        // A confirmed channel whose presence was asked for (or no longer is) is subscribed again.
        let presence_changed = ch.remote_presence != ch.wants_presence();
        match (&ch.remote, desired) {
            (Remote::None, true) | (Remote::Subscribed, true)
                if matches!(ch.remote, Remote::None) || presence_changed =>
            {
                let since = match (ch.last_seq, &ch.epoch) {
                    (Some(seq), Some(epoch)) => Some(Since { seq, epoch: epoch.clone() }),
                    _ => None,
                };
                let presence = ch.wants_presence();
                let cmd = ClientCommand::Subscribe { channel: key.to_owned() };
                let id = self.send_frame(cmd, since.clone(), presence);
                if let Some(ch) = self.channels.get_mut(key) {
                    ch.remote = Remote::Subscribing(id, since);
                    ch.remote_presence = presence;
                }
            }
            (Remote::Subscribed, false) => {
                let id = self.send(ClientCommand::Unsubscribe { channel: key.to_owned() }, None);
                if let Some(ch) = self.channels.get_mut(key) {
                    ch.remote = Remote::Unsubscribing(id);
                }
            }
            (Remote::None | Remote::Failed, false) if ch.handles.is_empty() => {
                self.channels.remove(key);
            }
            _ => {} // in flight: settled when the reply arrives
        }
    }

    fn find_pending(&self, id: Option<u64>, channel: &str) -> Option<String> {
        if let Some(id) = id {
            for (k, c) in self.channels.iter() {
                match &c.remote {
                    Remote::Subscribing(i, _) | Remote::Unsubscribing(i) if *i == id => {
                        return Some(k.clone())
                    }
                    _ => {}
                }
            }
            return None;
        }
        self.channels.contains_key(channel).then(|| channel.to_owned())
    }

    fn on_subscribed(
        &mut self,
        id: Option<u64>,
        channel: &str,
        seq: Option<u64>,
        recovered: Option<bool>,
    ) {
        let Some(key) = self.find_pending(id, channel) else { return };
        let epoch = self.epoch.clone();
        let Some(ch) = self.channels.get_mut(&key) else { return };
        let Remote::Subscribing(_, since) = ch.remote.clone() else { return };
        ch.remote = Remote::Subscribed;
        let gap = match &since {
            Some(s) if epoch.as_deref() != Some(s.epoch.as_str()) => Some(GapReason::EpochChanged),
            Some(_) if recovered != Some(true) => Some(GapReason::NotRecovered),
            Some(_) => None,
            None if ch.was_subscribed => Some(GapReason::NoPosition),
            None => None,
        };
        let last_seq = ch.last_seq;
        if since.is_none() || gap.is_some() {
            ch.last_seq = seq;
            ch.epoch = epoch;
        }
        ch.was_subscribed = true;
        ch.recovered = since.as_ref().map(|_| gap.is_none());
        let state = SubState::Subscribed { recovered: ch.recovered };
        for &sub in ch.handles.iter() {
            self.events.push(Event::Subscription { sub, state: state.clone() });
            if let Some(reason) = gap {
                self.events.push(Event::Gap { sub, last_seq, resume_seq: seq, reason });
            }
        }
        self.sync_channel(&key);
    }

    fn on_unsubscribed(&mut self, id: Option<u64>, channel: &str) {
        let Some(key) = self.find_pending(id, channel) else { return };
        let Some(ch) = self.channels.get_mut(&key) else { return };
        if !matches!(ch.remote, Remote::Unsubscribing(_)) {
            return;
        }
        ch.remote = Remote::None;
        self.sync_channel(&key);
    }

    /// The hub ended a subscription by itself (access revoked): it fails with `reason`.
    fn on_ended(&mut self, channel: &str, reason: String) {
        if self
            .channels
            .get(channel)
            .is_some_and(|c| !matches!(c.remote, Remote::None | Remote::Failed))
        {
            self.fail(channel, Some(ErrorCode::Forbidden), reason);
        }
    }

    /// Every handle of the channel `key` fails with `code` and `message`; the channel is not
    /// subscribed again until the application subscribes again.
    fn fail(&mut self, key: &str, code: Option<ErrorCode>, message: String) {
        let Some(ch) = self.channels.get_mut(key) else { return };
        ch.remote = Remote::Failed;
        for &sub in ch.handles.iter() {
            let state = SubState::Failed { code, message: message.clone() };
            self.events.push(Event::Subscription { sub, state });
        }
        self.sync_channel(key);
    }

    /// Sends the token as `auth` (its reply is recognised by id).
    fn send_auth(&mut self) {
        if let Some(token) = self.token.clone() {
            self.auth_id = Some(self.send(ClientCommand::Auth { token }, None));
        }
    }

    fn on_error(
        &mut self,
        now: Duration,
        id: Option<u64>,
        code: Option<ErrorCode>,
        message: String,
    ) {
        if code == Some(ErrorCode::Unauthenticated) || (id.is_some() && id == self.auth_id) {
            self.actions.push(Action::Close { code: 1000, reason: "unauthenticated".into() });
            let why = crate::frame::cat(&["unauthenticated: ", &message]);
            self.lose_link(now, &why, Some(CloseCode::UNAUTHENTICATED.0), CloseAction::Terminal);
            return;
        }
        if let Some(key) = id.and_then(|id| self.find_pending(Some(id), "")) {
            let Some(ch) = self.channels.get_mut(&key) else { return };
            if let Remote::Subscribing(..) = ch.remote {
                return self.fail(&key, code, message);
            }
            if let Remote::Unsubscribing(_) = ch.remote {
                ch.remote = Remote::None;
            }
            self.sync_channel(&key);
            return;
        }
        match self.take_request(id) {
            Some(req) => {
                let result = Err(RequestError { code, message });
                self.events.push(Event::Reply { req, result });
            }
            None => self.events.push(Event::Error { code, message }),
        }
    }

    fn on_event(
        &mut self,
        channel: String,
        kind: Option<crate::EventKind>,
        seq: Option<u64>,
        item: Option<u64>,
        payload: P,
    ) {
        if self.last_route.as_ref().is_none_or(|(last, _)| *last != channel) {
            let Ok(ev) = Channel::try_parse(&channel) else { return };
            self.last_route = Some((channel, ev));
        }
        let Some((_, ev)) = &self.last_route else { return };
        for ch in self.channels.values_mut() {
            if !matches!(ch.remote, Remote::Subscribed) || !ch.channel.receives(ev, kind, item) {
                continue;
            }
            if let (Some(seq), Some(last)) = (seq, ch.last_seq) {
                if seq <= last {
                    continue; // already delivered: never twice
                }
            }
            if seq.is_some() {
                ch.last_seq = seq;
            }
            for sub in &ch.handles {
                self.events.push(Event::Message { sub: *sub, seq, payload: payload.clone() });
            }
        }
    }
}
