//! Presence on this node: joining a channel's presence with a subscribe, the member list, a
//! connection that changes user, the counts a broker reports from the other nodes, and the hook
//! that tells the broker of this node's changes. The bookkeeping per channel is the slot's
//! ([`Slot`](super::slots::Slot)).

use super::fan_out::FanOut;
use super::slots::{Change, SlotKey};
use super::streams::Stream;
use super::*;
use crate::wire::PresenceMember;

/// What [`EventHub::on_presence`] calls: the channel, the user, and the user's connections on
/// this node now.
pub(super) type PresenceHook = Box<dyn Fn(&Channel, &str, u32) + Send + Sync>;

impl EventHub {
    /// After a subscribe's reply (the stream locked as `s`): with `presence`, `client` watches
    /// the channel, counts as a member when it is authenticated (a `join` to the other watchers
    /// when it is its user's first connection) and, with `snapshot`, gets the member list;
    /// without, it stops watching and leaves.
    pub(super) fn set_presence(
        &self,
        s: &mut Stream,
        ch: &Channel,
        client: &Arc<HubClient>,
        presence: bool,
        snapshot: bool,
        out: &mut FanOut,
    ) {
        let key = SlotKey::of(ch);
        let Some(slot) = s.slots.get_mut(key) else { return };
        let Some(member) = slot.members.get_mut(&client.key) else { return };
        let user = if presence { client.user() } else { None };
        let was_watching = std::mem::replace(&mut member.watches, presence);
        let old = std::mem::replace(&mut member.user, user.clone());
        if presence && !was_watching {
            slot.watch();
        }
        // The client itself learns of its join from the member list that follows.
        let except = snapshot.then_some(client.key);
        let changes = slot.rename(ch, old, user, except, out);
        if was_watching && !presence {
            slot.unwatch();
        }
        if presence && snapshot {
            let (members, truncated) =
                slot.presence.as_ref().map(|p| p.members()).unwrap_or_default();
            let msg = ServerMessage::Presence { channel: ch.to_string(), members, truncated };
            if let Err(e) = client.queue().push(msg.encode()) {
                out.failed.push((client.clone(), e));
            }
        }
        s.slots.prune(key);
        for c in changes {
            self.presence_changed(ch, &c);
        }
    }

    /// Tells the broker (the [`EventHub::on_presence`] hook) of a change of this node's count.
    pub(super) fn presence_changed(&self, ch: &Channel, change: &Change) {
        if let Some(hook) = self.presence_hook.get() {
            hook(ch, &change.user, change.local);
        }
    }

    /// Sets, with the stream locked as `s`, every user's connections to `ch` on the other nodes
    /// (those not in `remote` have none), telling the watchers who joined and left.
    pub(super) fn sync_remote_locked(
        &self,
        s: &mut Stream,
        ch: &Channel,
        remote: &[(Arc<str>, u32)],
        out: &mut FanOut,
    ) {
        let slot = s.slots.entry(SlotKey::of(ch));
        for (user, joined) in slot.sync_remote(remote) {
            slot.announce(ch, &user, joined, None, out);
        }
    }

    /// Sets `user`'s connections to `ch` on the other nodes (a broker calls this as they change),
    /// telling this node's watchers of the channel when the user joins or leaves. Nothing
    /// happens when nobody here watches the channel.
    pub fn set_remote_presence(&self, ch: &Channel, user: &str, connections: u32) {
        let Some(stream) = self.existing(&ch.stream()) else { return };
        let mut out = FanOut::default();
        {
            let mut s = stream.lock();
            let Some(slot) = s.slots.get_mut(SlotKey::of(ch)) else { return };
            if let Some(joined) = slot.set_remote(&Arc::from(user), connections) {
                slot.announce(ch, user, joined, None, &mut out);
            }
        }
        self.settle(&stream, out);
    }

    /// Sets every user's connections to `ch` on the other nodes at once (a broker after loading
    /// or reloading its view; users not in `remote` have none there), telling this node's
    /// watchers who joined and left. Nothing happens when nobody here watches the channel.
    pub fn sync_remote_presence(&self, ch: &Channel, remote: &[(Arc<str>, u32)]) {
        let Some(stream) = self.existing(&ch.stream()) else { return };
        let mut out = FanOut::default();
        {
            let mut s = stream.lock();
            let watched = s
                .slots
                .get(SlotKey::of(ch))
                .and_then(|slot| slot.presence.as_ref())
                .is_some_and(|p| p.watched());
            if watched {
                self.sync_remote_locked(&mut s, ch, remote, &mut out);
            }
        }
        self.settle(&stream, out);
    }

    /// Who is on `ch` as this node knows it (its connections, and those a broker reported from
    /// the other nodes while someone here watches): at most
    /// [`MAX_PRESENCE_MEMBERS`](crate::wire::MAX_PRESENCE_MEMBERS) members, and whether some were
    /// left out.
    pub fn presence(&self, ch: &Channel) -> (Vec<PresenceMember>, bool) {
        let Some(stream) = self.existing(&ch.stream()) else { return (Vec::new(), false) };
        let s = stream.lock();
        s.slots
            .get(SlotKey::of(ch))
            .and_then(|slot| slot.presence.as_ref())
            .map(|p| p.members())
            .unwrap_or_default()
    }

    /// Every channel with members on this node, each user with their connections here (a broker
    /// publishes them again after it lost its link).
    pub fn local_presence(&self) -> Vec<(Channel, String, u32)> {
        let streams: Vec<Arc<Mutex<Stream>>> = self.streams.read().values().cloned().collect();
        let mut all = Vec::new();
        for stream in streams {
            let mut s = stream.lock();
            let keys: Vec<SlotKey> = s
                .slots
                .iter_mut()
                .filter(|(_, slot)| slot.presence.is_some())
                .map(|(k, _)| k)
                .collect();
            for key in keys {
                let ch = s.channel_of(key);
                if let Some(p) = s.slots.get(key).and_then(|slot| slot.presence.as_ref()) {
                    all.extend(p.local().map(|(u, n)| (ch.clone(), u.to_owned(), n)));
                }
            }
        }
        all
    }

    /// After `client` authenticated as someone else: in every channel where it is a presence
    /// member, it leaves as the old user and joins as the new one (every watcher, the client
    /// included, sees both).
    pub fn update_presence_user(&self, client: &Arc<HubClient>) {
        for ch in client.channels() {
            let Some(stream) = self.existing(&ch.stream()) else { continue };
            let mut out = FanOut::default();
            {
                let mut s = stream.lock();
                let changed = s
                    .slots
                    .get(SlotKey::of(&ch))
                    .and_then(|slot| slot.members.get(&client.key))
                    .is_some_and(|m| m.watches && m.user != client.user());
                if changed {
                    self.set_presence(&mut s, &ch, client, true, false, &mut out);
                }
            }
            self.settle(&stream, out);
        }
    }

    /// Sets the function told of every change of this node's connections of a user on a
    /// channel with presence (a broker publishes them to the other nodes); only the first call
    /// takes effect. Called with the stream locked: it must not block or call back into the hub.
    pub fn on_presence(&self, hook: impl Fn(&Channel, &str, u32) + Send + Sync + 'static) {
        let _ = self.presence_hook.set(Box::new(hook));
    }
}
