//! Connections: registration under the connection cap, the `welcome`, removal, and queueing a
//! frame to one client.

use super::*;

impl EventHub {
    /// The `welcome` frame for a client.
    pub fn welcome(&self, client: &HubClient) -> ServerMessage {
        ServerMessage::Welcome { epoch: self.epoch(), client_id: client.id.clone() }
    }

    /// Registers a connection.
    ///
    /// # Errors
    /// [`RealtimeError::ConnectionLimit`] at [`HubConfig::max_connections`].
    pub fn connect(&self) -> Result<(Arc<HubClient>, ClientReceiver), RealtimeError> {
        self.connect_with(ClientMetadata::now())
    }

    /// Registers a connection with its metadata.
    ///
    /// # Errors
    /// [`RealtimeError::ConnectionLimit`] at [`HubConfig::max_connections`].
    pub fn connect_with(
        &self,
        metadata: ClientMetadata,
    ) -> Result<(Arc<HubClient>, ClientReceiver), RealtimeError> {
        let max = self.config.max_connections;
        if self.connections.fetch_update(Relaxed, Relaxed, |n| (n < max).then_some(n + 1)).is_err()
        {
            self.counters.rejected_connections.fetch_add(1, Relaxed);
            return Err(RealtimeError::ConnectionLimit(max));
        }
        let key = self.next_key.fetch_add(1, Relaxed);
        let cfg = &self.config;
        let id = uuid::Uuid::new_v4().to_string();
        let (client, rx) =
            create_client_with(id.clone(), key, cfg.queue_capacity, cfg.max_queue_bytes, metadata);
        self.clients.write().insert(id, client.clone());
        self.counters.total_connections.fetch_add(1, Relaxed);
        Ok((client, rx))
    }

    /// Removes a connection and all its subscriptions; its receiver then yields `None`.
    /// Unknown ids are ignored.
    pub fn disconnect(&self, id: &str) {
        let removed = self.clients.write().remove(id);
        if let Some(client) = removed {
            self.connections.fetch_sub(1, Relaxed);
            client.queue().close(CloseReason::Disconnected);
            for ch in client.take_subscriptions() {
                self.remove_from_stream(&client, &ch);
                self.counters.subscriptions.fetch_sub(1, Relaxed);
            }
        }
    }

    /// The client with this id.
    pub fn get_client(&self, id: &str) -> Option<Arc<HubClient>> {
        self.clients.read().get(id).cloned()
    }

    /// Connections now.
    pub fn connection_count(&self) -> usize {
        self.connections.load(Relaxed)
    }

    /// Queues a frame to one client, disconnecting it as a slow consumer if its queue is full.
    /// Returns whether the frame was queued.
    pub fn send(&self, client: &Arc<HubClient>, frame: Frame) -> bool {
        match client.queue().push(frame) {
            Ok(()) => true,
            Err(e) => {
                self.push_failed(client, e);
                false
            }
        }
    }

    pub(super) fn push_failed(&self, client: &Arc<HubClient>, e: PushError) -> RealtimeError {
        if e == PushError::Full {
            client.queue().close(CloseReason::SlowConsumer);
            self.counters.queue_drops.fetch_add(1, Relaxed);
            self.counters.slow_consumers.fetch_add(1, Relaxed);
        }
        self.disconnect(&client.id);
        client.push_error(e)
    }
}
