//! The subscribers of one stream, per channel ([`Slots`]): the repository channel, `/prs`,
//! `/issues` and the item channels, each a [`Slot`] with its members and, once someone subscribed
//! with `presence`, its [`Presence`]: who is there (users with connections on this node and on
//! the others), join and leave frames to the presence subscribers, and the snapshot a new one
//! gets.
//!
//! A user is a member while any of their connections is: the first connection joins (one `join`
//! frame), the last one leaves (one `leave`). Connections are counted here (`local`) and, behind
//! a broker, on the other nodes (`remote`, set by the broker); only the sum decides.

use super::fan_out::FanOut;
use crate::client::HubClient;
use crate::frame::Frame;
use crate::subscription::{Channel, RepoFilter};
use crate::wire::{PresenceMember, ServerMessage, MAX_PRESENCE_MEMBERS};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// A subscriber of a slot.
pub(super) struct Member {
    pub(super) client: Arc<HubClient>,
    /// Live events up to this seq were already queued to it (by the `subscribed` reply and its
    /// replay); [`EventHub::deliver`](super::EventHub::deliver) skips them. 0 for the hub's own
    /// publishes.
    pub(super) min_seq: u64,
    /// Subscribed with `presence`: gets `join` and `leave`.
    pub(super) watches: bool,
    /// The user it counts as a member of the slot's presence (a watcher that is authenticated).
    pub(super) user: Option<Arc<str>>,
}

impl Member {
    pub(super) fn new(client: &Arc<HubClient>, min_seq: u64) -> Member {
        Member { client: client.clone(), min_seq, watches: false, user: None }
    }
}

/// Which channel of a stream a slot holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum SlotKey {
    /// The stream's own channel (`repo:o/n`, `user:u`, `org:o`).
    Base,
    /// `/prs` or `/issues`.
    Family(RepoFilter),
    /// `/prs/N` or `/issues/N`.
    Item(RepoFilter, u64),
}

impl SlotKey {
    pub(super) fn of(channel: &Channel) -> SlotKey {
        match (channel.repo_filter(), channel.item()) {
            (None, _) => SlotKey::Base,
            (Some(f), None) => SlotKey::Family(f),
            (Some(f), Some(n)) => SlotKey::Item(f, n),
        }
    }

    fn fixed(self) -> Option<usize> {
        match self {
            SlotKey::Base => Some(0),
            SlotKey::Family(RepoFilter::Prs) => Some(1),
            SlotKey::Family(RepoFilter::Issues) => Some(2),
            SlotKey::Item(..) => None,
        }
    }
}

/// One channel's subscribers.
#[derive(Default)]
pub(super) struct Slot {
    pub(super) members: HashMap<u64, Member>,
    /// Who is on the channel; made by the first presence subscriber, dropped with the last.
    pub(super) presence: Option<Box<Presence>>,
}

/// Connections of one user on a channel.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Counts {
    local: u32,
    remote: u32,
}

impl Counts {
    fn total(self) -> u32 {
        self.local.saturating_add(self.remote)
    }
}

/// Who is on one channel.
#[derive(Default)]
pub(super) struct Presence {
    users: BTreeMap<Arc<str>, Counts>,
    /// Members of the slot that get `join` and `leave`.
    watchers: usize,
}

impl Presence {
    /// The member list (at most [`MAX_PRESENCE_MEMBERS`], by user name) and whether it was cut.
    pub(super) fn members(&self) -> (Vec<PresenceMember>, bool) {
        let members = self
            .users
            .iter()
            .filter(|(_, c)| c.total() > 0)
            .take(MAX_PRESENCE_MEMBERS)
            .map(|(user, c)| PresenceMember { user: user.to_string(), connections: c.total() })
            .collect();
        (members, self.users.len() > MAX_PRESENCE_MEMBERS)
    }

    /// Whether someone on this node watches the channel.
    pub(super) fn watched(&self) -> bool {
        self.watchers > 0
    }

    /// This node's connections per user.
    pub(super) fn local(&self) -> impl Iterator<Item = (&str, u32)> {
        self.users.iter().filter(|(_, c)| c.local > 0).map(|(u, c)| (&**u, c.local))
    }

    /// Applies `f` to `user`'s counts; whether the user joined (`Some(true)`) or left
    /// (`Some(false)`).
    fn update(&mut self, user: &Arc<str>, f: impl FnOnce(&mut Counts)) -> Option<bool> {
        let counts = self.users.entry(user.clone()).or_default();
        let before = counts.total() > 0;
        f(counts);
        let after = counts.total() > 0;
        if !after {
            self.users.remove(user);
        }
        (before != after).then_some(after)
    }
}

/// What changed in a slot's presence, to tell its watchers (and the broker).
pub(super) struct Change {
    pub(super) user: Arc<str>,
    /// This node's connections of the user now.
    pub(super) local: u32,
    /// `Some(true)`: joined, `Some(false)`: left, `None`: only the count changed.
    pub(super) joined: Option<bool>,
}

impl Slot {
    /// Counts `user` once more (`+1`) or once less (`-1`) here; the change.
    pub(super) fn add_local(&mut self, user: &Arc<str>, delta: i32) -> Change {
        let p = self.presence.get_or_insert_with(Box::default);
        let mut local = 0;
        let joined = p.update(user, |c| {
            c.local = c.local.saturating_add_signed(delta);
            local = c.local;
        });
        Change { user: user.clone(), local, joined }
    }

    /// Sets `user`'s connections on the other nodes; whether the user joined or left. Ignored
    /// (`None`) when nobody here watches the channel: the broker gives a new watcher a fresh
    /// snapshot.
    pub(super) fn set_remote(&mut self, user: &Arc<str>, remote: u32) -> Option<bool> {
        self.presence.as_mut()?.update(user, |c| c.remote = remote)
    }

    /// Sets the connections on the other nodes of every user (`remote`; users not in it have
    /// none); the users who joined or left.
    pub(super) fn sync_remote(&mut self, remote: &[(Arc<str>, u32)]) -> Vec<(Arc<str>, bool)> {
        let p = self.presence.get_or_insert_with(Box::default);
        let mut changes = Vec::new();
        let gone: Vec<Arc<str>> = p
            .users
            .iter()
            .filter(|(u, c)| c.remote > 0 && !remote.iter().any(|(r, _)| r == *u))
            .map(|(u, _)| u.clone())
            .collect();
        for user in gone {
            if let Some(j) = p.update(&user, |c| c.remote = 0) {
                changes.push((user, j));
            }
        }
        for (user, n) in remote {
            if let Some(j) = p.update(user, |c| c.remote = *n) {
                changes.push((user.clone(), j));
            }
        }
        changes
    }

    /// Queues `frame` to every watcher but `except`.
    pub(super) fn to_watchers(&self, frame: &Frame, except: Option<u64>, out: &mut FanOut) {
        if self.presence.as_ref().is_none_or(|p| p.watchers == 0) {
            return;
        }
        for (key, m) in &self.members {
            if m.watches && Some(*key) != except {
                match m.client.queue().push(frame.clone()) {
                    Ok(()) => {}
                    Err(e) => out.failed.push((m.client.clone(), e)),
                }
            }
        }
    }

    /// Tells the watchers (but `except`) that `user` joined or left `channel`.
    pub(super) fn announce(
        &self,
        channel: &Channel,
        user: &str,
        joined: bool,
        except: Option<u64>,
        out: &mut FanOut,
    ) {
        let (channel, user) = (channel.to_string(), user.to_owned());
        let msg = if joined {
            ServerMessage::Join { channel, user }
        } else {
            ServerMessage::Leave { channel, user }
        };
        self.to_watchers(&msg.encode(), except, out);
    }

    /// Adds a watcher to the count.
    pub(super) fn watch(&mut self) {
        self.presence.get_or_insert_with(Box::default).watchers += 1;
    }

    /// Moves a member from `old` to `new` (either may be none): counts, and `leave` / `join` to
    /// the watchers but `except`; the changes, for the broker.
    pub(super) fn rename(
        &mut self,
        channel: &Channel,
        old: Option<Arc<str>>,
        new: Option<Arc<str>>,
        except: Option<u64>,
        out: &mut FanOut,
    ) -> Vec<Change> {
        if old == new {
            return Vec::new();
        }
        let changes: Vec<Change> = [(old, -1), (new, 1)]
            .into_iter()
            .filter_map(|(u, delta)| Some(self.add_local(&u?, delta)))
            .collect();
        for c in &changes {
            if let Some(joined) = c.joined {
                self.announce(channel, &c.user, joined, except, out);
            }
        }
        changes
    }

    /// Removes a watcher from the count; the presence goes with the last one (remote counts are
    /// only kept while someone here watches).
    pub(super) fn unwatch(&mut self) {
        if let Some(p) = &mut self.presence {
            p.watchers = p.watchers.saturating_sub(1);
            if p.watchers == 0 && p.users.values().all(|c| c.local == 0) {
                self.presence = None;
            }
        }
    }

    /// Takes `member`'s presence out of the slot (it was removed from `members`): its user's
    /// count, the `leave` to the watchers, and the change for the broker.
    pub(super) fn forget(
        &mut self,
        channel: &Channel,
        member: &Member,
        out: &mut FanOut,
    ) -> Vec<Change> {
        let changes = self.rename(channel, member.user.clone(), None, None, out);
        if member.watches {
            self.unwatch();
        }
        changes
    }
}

/// The slots of one stream: three fixed ones and the item channels' (made on first use, removed
/// when empty, so a stream holds at most one per item someone is subscribed to).
#[derive(Default)]
pub(super) struct Slots {
    fixed: [Slot; 3],
    items: HashMap<(RepoFilter, u64), Slot>,
}

impl Slots {
    pub(super) fn get(&self, key: SlotKey) -> Option<&Slot> {
        match (key.fixed(), key) {
            (Some(i), _) => self.fixed.get(i),
            (None, SlotKey::Item(f, n)) => self.items.get(&(f, n)),
            (None, _) => None,
        }
    }

    pub(super) fn get_mut(&mut self, key: SlotKey) -> Option<&mut Slot> {
        match (key.fixed(), key) {
            (Some(i), _) => self.fixed.get_mut(i),
            (None, SlotKey::Item(f, n)) => self.items.get_mut(&(f, n)),
            (None, _) => None,
        }
    }

    /// The slot of `key`, made if missing.
    pub(super) fn entry(&mut self, key: SlotKey) -> &mut Slot {
        match key {
            SlotKey::Item(f, n) => self.items.entry((f, n)).or_default(),
            _ => &mut self.fixed[key.fixed().unwrap_or(0)],
        }
    }

    /// Drops the item slot `key` if nothing is left in it.
    pub(super) fn prune(&mut self, key: SlotKey) {
        if let SlotKey::Item(f, n) = key {
            if self.items.get(&(f, n)).is_some_and(|s| s.members.is_empty() && s.presence.is_none())
            {
                self.items.remove(&(f, n));
            }
        }
    }

    /// Every slot with its key.
    pub(super) fn iter_mut(&mut self) -> impl Iterator<Item = (SlotKey, &mut Slot)> {
        let [base, prs, issues] = &mut self.fixed;
        [
            (SlotKey::Base, base),
            (SlotKey::Family(RepoFilter::Prs), prs),
            (SlotKey::Family(RepoFilter::Issues), issues),
        ]
        .into_iter()
        .chain(self.items.iter_mut().map(|(&(f, n), s)| (SlotKey::Item(f, n), s)))
    }

    /// Every slot.
    pub(super) fn iter(&self) -> impl Iterator<Item = &Slot> {
        self.fixed.iter().chain(self.items.values())
    }

    pub(super) fn subscriber_count(&self) -> usize {
        self.iter().map(|s| s.members.len()).sum()
    }
}
