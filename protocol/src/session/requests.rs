//! Requests of the session: `presence`, `history` and `publish` commands answered by id, and
//! `signal`s.
//!
//! A request is sent at once when a socket is open, else when the next one opens; one sent on a
//! socket that drops is sent again on the next (the reads are harmless to repeat; a publish
//! carries an idempotency key, so the hub publishes it once). It waits at most
//! [`SessionConfig::request_timeout`](super::SessionConfig::request_timeout), and fails at once
//! when the session closes for good. At most
//! [`SessionConfig::max_requests`](super::SessionConfig::max_requests) wait at a time.

use super::*;

/// A request waiting for its answer.
#[derive(Debug, Clone)]
pub(super) struct Pending {
    id: u64,
    frame: String,
    sent: bool,
    deadline: Duration,
}

impl<P: Clone> Session<P> {
    /// Asks who is on `channel` (without joining its presence): the answer is an
    /// [`Event::Reply`] for the returned request, whose payload is the `presence` frame.
    ///
    /// # Errors
    /// [`SessionError::InvalidChannel`], [`SessionError::TooManyRequests`].
    pub fn presence(&mut self, now: Duration, channel: &str) -> Result<ReqId, SessionError> {
        Channel::try_parse(channel).map_err(SessionError::InvalidChannel)?;
        self.request(now, ClientCommand::Presence { channel: channel.to_owned() })
    }

    /// Asks for the last `limit` events of `channel` (1..=100; `None`: the hub's default, 20):
    /// the answer is an [`Event::Reply`] whose payload is the `history` frame. Subscribing with
    /// its `seq` and `epoch` as the position continues right after them.
    ///
    /// # Errors
    /// [`SessionError::InvalidChannel`], [`SessionError::TooManyRequests`].
    pub fn history(
        &mut self,
        now: Duration,
        channel: &str,
        limit: Option<u32>,
    ) -> Result<ReqId, SessionError> {
        Channel::try_parse(channel).map_err(SessionError::InvalidChannel)?;
        self.request(now, ClientCommand::History { channel: channel.to_owned(), limit })
    }

    /// Publishes an event on `channel` (the connection's identity needs publish rights: the
    /// hub's publish key, or a token whose `publish` claim covers the channel): the answer is an
    /// [`Event::Reply`] whose payload is the `published` frame (or the hub's refusal). The
    /// publish always carries an idempotency key — `idempotency_key`, else one the session makes
    /// — so one sent again on the next socket after its socket dropped is published once.
    ///
    /// # Errors
    /// [`SessionError::InvalidChannel`], [`SessionError::TooManyRequests`].
    #[cfg(feature = "json")]
    pub fn publish(
        &mut self,
        now: Duration,
        channel: &str,
        event: crate::EventKind,
        data: serde_json::Value,
        idempotency_key: Option<String>,
    ) -> Result<ReqId, SessionError> {
        Channel::try_parse(channel).map_err(SessionError::InvalidChannel)?;
        let key = idempotency_key.unwrap_or_else(|| {
            let (a, b) = (self.rng.next_u64(), self.rng.next_u64());
            let mut k = String::from("s-");
            for part in [a, b] {
                for i in (0..16).rev() {
                    k.push(char::from(b"0123456789abcdef"[((part >> (i * 4)) & 15) as usize]));
                }
            }
            k
        });
        let command = ClientCommand::Publish {
            channel: channel.to_owned(),
            event,
            data,
            idempotency_key: Some(key),
        };
        self.request(now, command)
    }

    /// Sends a signal (`event`, with `data` as JSON text) to the other subscribers of the item
    /// channel `channel`, on the live connection only: signals are ephemeral, never queued. The
    /// hub refuses it with an error frame (an [`Event::Error`]) when it is not allowed.
    ///
    /// # Errors
    /// [`SessionError::NotConnected`] when no connection is live.
    pub fn signal(&mut self, channel: &str, event: &str, data: &str) -> Result<(), SessionError> {
        if !matches!(self.phase, Phase::Connected { .. }) {
            return Err(SessionError::NotConnected);
        }
        let id = RequestId::Num(self.take_id());
        self.outbox.push(crate::wire::encode_signal(channel, event, data, Some(&id)));
        Ok(())
    }

    fn request(&mut self, now: Duration, command: ClientCommand) -> Result<ReqId, SessionError> {
        if self.requests.len() >= self.cfg.max_requests {
            return Err(SessionError::TooManyRequests(self.cfg.max_requests));
        }
        let id = self.take_id();
        let frame =
            ClientFrame { command, since: None, presence: false, id: Some(RequestId::Num(id)) };
        let deadline = now.saturating_add(self.cfg.request_timeout);
        self.requests.push(Pending { id, frame: frame.encode(), sent: false, deadline });
        if self.link.is_some() {
            self.send_requests();
        }
        Ok(ReqId(id))
    }

    /// Sends the requests not sent on the open socket.
    pub(super) fn send_requests(&mut self) {
        for r in self.requests.iter_mut().filter(|r| !r.sent) {
            r.sent = true;
            self.outbox.push(r.frame.clone());
        }
    }

    /// The socket is gone: its requests are sent again on the next one.
    pub(super) fn requests_unsent(&mut self) {
        for r in &mut self.requests {
            r.sent = false;
        }
    }

    /// The earliest request deadline.
    pub(super) fn request_deadline(&self) -> Option<Duration> {
        self.requests.iter().map(|r| r.deadline).min()
    }

    /// Fails the requests whose time is up.
    pub(super) fn expire_requests(&mut self, now: Duration) {
        let mut i = 0;
        while i < self.requests.len() {
            if now >= self.requests[i].deadline {
                let r = self.requests.remove(i);
                let error = RequestError { code: None, message: "request timed out".into() };
                self.events.push(Event::Reply { req: ReqId(r.id), result: Err(error) });
            } else {
                i += 1;
            }
        }
    }

    /// Fails every request: the session closed for good.
    pub(super) fn fail_requests(&mut self, why: &str) {
        for r in core::mem::take(&mut self.requests) {
            let error = RequestError { code: None, message: why.to_owned() };
            self.events.push(Event::Reply { req: ReqId(r.id), result: Err(error) });
        }
    }

    /// Answers the request `id` with `payload`; `false` when no request has that id.
    pub(super) fn answer(&mut self, id: Option<u64>, payload: P) -> bool {
        let Some(req) = self.take_request(id) else { return false };
        self.events.push(Event::Reply { req, result: Ok(payload) });
        true
    }

    /// Takes the request `id` out of the waiting ones.
    pub(super) fn take_request(&mut self, id: Option<u64>) -> Option<ReqId> {
        let i = self.requests.iter().position(|r| Some(r.id) == id)?;
        Some(ReqId(self.requests.remove(i).id))
    }
}
