//! Revocation on this node: ending a user's subscriptions to a channel (each with
//! `{"type":"unsubscribed","channel":C,"reason":"revoked"}`) and closing a user's connections.
//! An [`Engine`](crate::Engine) applies them on every node of a cluster.

use super::*;

/// What [`EventHub::on_revoke`] calls.
pub(super) type RevokeHook = Box<dyn Fn(&str, &Channel) + Send + Sync>;

/// Whether revoking `revoked` ends the held channel `held`: the same channel, or any channel of
/// the repository when `revoked` is a repository's base channel.
fn covers(revoked: &Channel, held: &Channel) -> bool {
    revoked == held
        || (revoked.channel_type == held.channel_type
            && revoked.identifier == held.identifier
            && revoked.filter.is_none()
            && matches!(revoked.channel_type, crate::ChannelType::Repository))
}

impl EventHub {
    /// The connections of this node authenticated as `user`.
    fn clients_of(&self, user: &str) -> Vec<Arc<HubClient>> {
        let clients = self.clients.read();
        clients.values().filter(|c| c.user().as_deref() == Some(user)).cloned().collect()
    }

    /// Ends `user`'s subscriptions to `channel` on this node (a repository's base channel ends
    /// every channel of the repository), telling each connection with an `unsubscribed` frame
    /// whose `reason` is `"revoked"`, then calls the [`EventHub::on_revoke`] hook. Returns the
    /// subscriptions ended.
    pub fn revoke_local(&self, user: &str, channel: &Channel) -> usize {
        let mut ended = 0;
        for client in self.clients_of(user) {
            for held in client.channels().into_iter().filter(|h| covers(channel, h)) {
                let name = held.to_string();
                if self.unsubscribe(&client, &name).is_ok_and(|(_, was)| was) {
                    let msg = ServerMessage::Ended { channel: name, reason: "revoked".into() };
                    self.send(&client, msg.encode());
                    ended += 1;
                }
            }
        }
        if let Some(hook) = self.revoke_hook.get() {
            hook(user, channel);
        }
        ended
    }

    /// Closes every connection of `user` on this node: the transport closes each with
    /// [`CloseCode::FORBIDDEN`](crate::CloseCode::FORBIDDEN) (4003). Returns how many.
    pub fn disconnect_user_local(&self, user: &str) -> usize {
        let clients = self.clients_of(user);
        for client in &clients {
            client.queue().close(CloseReason::Revoked);
            self.disconnect(&client.id);
        }
        clients.len()
    }

    /// Sets the function told of every revocation this node applies (`user`, `channel`), e.g.
    /// to drop an authorizer's cached decisions; only the first call takes effect.
    pub fn on_revoke(&self, hook: impl Fn(&str, &Channel) + Send + Sync + 'static) {
        let _ = self.revoke_hook.set(Box::new(hook));
    }
}
