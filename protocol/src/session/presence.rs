//! The presence state machine of the session: the members of each channel subscribed with
//! presence, kept from the hub's `presence`, `join` and `leave` frames, and what the handles that
//! asked for it are told. After a reconnect the hub's new member list is compared with the one
//! held, so only real changes are reported as joins and leaves.

use super::*;

impl<P: Clone> Session<P> {
    /// The members of `channel`'s presence as last known (user and connections, by user);
    /// `None` while no handle of the channel asked for presence or no list arrived yet.
    pub fn members(&self, channel: &str) -> Option<&[(String, u32)]> {
        self.channels.get(channel)?.members.as_deref()
    }

    /// A handle that asked for presence on a channel whose members are known gets them at once.
    pub(super) fn presence_to_new_watcher(&mut self, key: &str, sub: SubId) {
        if self.channels.get(key).is_some_and(|c| c.members.is_some()) {
            self.events.push(Event::Presence { sub });
        }
    }

    /// A member list arrived (after a subscribe with presence): the joins and leaves it brings
    /// against the list held (none the first time), then the list, to every watching handle.
    /// The hub lists members by user; the list is kept so.
    pub(super) fn on_members(&mut self, channel: &str, members: Vec<(String, u32)>) {
        let Some(ch) = self.channels.get_mut(channel) else { return };
        if ch.watchers.is_empty() {
            return;
        }
        // The first list is news to nobody; a later one (a reconnect) is compared with it.
        let old = ch.members.replace(members);
        let first = old.is_none();
        let old = old.unwrap_or_default();
        let new = ch.members.as_deref().unwrap_or_default();
        let has = |list: &[(String, u32)], user: &str| list.iter().any(|(u, _)| u == user);
        let joined = new.iter().filter(|(u, _)| !first && !has(&old, u));
        let left = old.iter().filter(|(u, _)| !has(new, u));
        for (user, j) in joined.map(|(u, _)| (u, true)).chain(left.map(|(u, _)| (u, false))) {
            for &sub in ch.watchers.iter() {
                self.events.push(Event::Member { sub, user: user.clone(), joined: j });
            }
        }
        for &sub in ch.watchers.iter() {
            self.events.push(Event::Presence { sub });
        }
    }

    /// A `join` (`joined`) or `leave` frame: the list changes and the watching handles are told,
    /// unless it says nothing new.
    pub(super) fn on_join(&mut self, channel: &str, user: String, joined: bool) {
        let Some(ch) = self.channels.get_mut(channel) else { return };
        let Some(members) = &mut ch.members else { return };
        match (members.binary_search_by(|(u, _)| u.as_str().cmp(&user)), joined) {
            (Err(i), true) => members.insert(i, (user.clone(), 1)),
            (Ok(i), false) => drop(members.remove(i)),
            _ => return,
        }
        for &sub in ch.watchers.iter() {
            self.events.push(Event::Member { sub, user: user.clone(), joined });
        }
    }
}
