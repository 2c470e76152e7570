//! The seed crate's API, kept for compatibility: commands answered by return value, `emit`,
//! the unfiltered event broadcast and `broadcast_all`.

use super::subscribe::SubscribeOptions;
use super::*;

impl EventHub {
    /// Seed API: handles a command and **returns** the reply for the caller to send (subscribe
    /// here never replays; use [`EventHub::handle_frame`] for `since` and ordered replies).
    ///
    /// # Errors
    /// The error to report to the client (its `error` frame is `ServerMessage::error(&e)`).
    pub fn handle_command(
        &self,
        client: &Arc<HubClient>,
        command: ClientCommand,
    ) -> Result<ServerMessage, RealtimeError> {
        match command {
            ClientCommand::Subscribe { channel } => {
                let s = self.subscribe_inner(client, &channel, None, None, false)?;
                Ok(ServerMessage::Subscribed {
                    channel: s.channel.to_string(),
                    seq: Some(s.seq),
                    recovered: None,
                })
            }
            ClientCommand::Unsubscribe { channel } => {
                let (ch, _) = self.unsubscribe(client, &channel)?;
                Ok(ServerMessage::Unsubscribed { channel: ch.to_string() })
            }
            ClientCommand::Ping => Ok(ServerMessage::Pong),
            ClientCommand::Publish { channel, event, data, idempotency_key } => {
                let key = crate::wire::idempotency_key(idempotency_key.as_deref())?;
                let p = self.publish_once(RealtimeEvent::new(&channel, event, data), key)?;
                let channel = Channel::parse(&channel)?.to_string();
                Ok(ServerMessage::Published { channel, seq: p.seq, duplicate: p.duplicate })
            }
            ClientCommand::Auth { .. } => Err(RealtimeError::Unauthenticated(
                "this hub has no authenticator; the server layer handles auth".into(),
            )),
            ClientCommand::Presence { channel } => {
                let ch = Channel::parse(&channel)?;
                let (members, truncated) = self.presence(&ch);
                Ok(ServerMessage::Presence { channel: ch.to_string(), members, truncated })
            }
            ClientCommand::History { channel, limit } => {
                let limit = limit.unwrap_or(crate::wire::HISTORY_DEFAULT_LIMIT);
                let page = self.history(client, &channel, limit as usize)?;
                let events = page
                    .events
                    .iter()
                    .filter_map(|f| crate::wire::decode_server_frame(f.as_str()).ok())
                    .map(|f| f.message)
                    .collect();
                let (channel, epoch, seq) = (page.channel.to_string(), page.epoch, page.seq);
                Ok(ServerMessage::History { channel, epoch, seq, events })
            }
            ClientCommand::Signal { .. } => Err(RealtimeError::Forbidden(
                "signals need an authenticated user: the server layer sends them".into(),
            )),
        }
    }

    /// Handles one decoded client frame and queues its reply (echoing the frame's `id`) to the
    /// client, in order with events. Subscribe honours `since`. Auth and publish rights are the
    /// transport's to check before calling this.
    pub fn handle_frame(&self, client: &Arc<HubClient>, frame: ClientFrame) {
        let id = frame.id.as_ref();
        let result = match frame.command {
            ClientCommand::Subscribe { channel } => {
                let opts = SubscribeOptions::new(frame.since.as_ref(), frame.presence, id);
                match self.subscribe_with(client, &channel, opts) {
                    Ok(_) => return,
                    Err(RealtimeError::SlowConsumer(_) | RealtimeError::ChannelClosed) => return,
                    Err(e) => Err(e),
                }
            }
            other => self.handle_command(client, other),
        };
        let msg = result.unwrap_or_else(|e| ServerMessage::error(&e));
        self.send(client, msg.encode_with_id(id));
    }

    /// Seed API: publishes an event; `None` if its channel is invalid (use
    /// [`EventHub::publish_event`] to get the error).
    pub fn emit(&self, event: RealtimeEvent) -> Option<Published> {
        self.publish_event(event).ok()
    }

    /// Seed API: builds and publishes an event; `None` if the channel is invalid.
    pub fn emit_event(
        &self,
        channel: String,
        kind: EventKind,
        data: serde_json::Value,
    ) -> Option<Published> {
        self.emit(RealtimeEvent::new(channel, kind, data))
    }

    /// Seed API: every event published on this hub ([`EventHub::emit`], [`EventHub::publish`]),
    /// unfiltered. A receiver more
    /// than [`BROADCAST_CAPACITY`] events behind gets `Lagged`.
    pub fn subscribe_events(&self) -> broadcast::Receiver<RealtimeEvent> {
        self.event_tx.subscribe()
    }

    /// Seed API: queues a raw text frame to every connected client, regardless of
    /// subscriptions. Returns how many got it.
    pub fn broadcast_all(&self, message: &str) -> usize {
        let frame = Frame::from_string(message.to_owned());
        let clients: Vec<Arc<HubClient>> = self.clients.read().values().cloned().collect();
        clients.iter().filter(|c| self.send(c, frame.clone())).count()
    }
}
