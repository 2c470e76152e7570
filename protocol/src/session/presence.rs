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
        if let Some(members) = self.channels.get(key).and_then(|c| c.members.clone()) {
            self.events.push(Event::Presence { sub, channel: key.to_owned(), members });
        }
    }

    /// A member list arrived (after a subscribe with presence): the joins and leaves it brings
    /// against the list held (none the first time), then the list, to every watching handle.
    pub(super) fn on_members(&mut self, channel: &str, mut members: Vec<(String, u32)>) {
        let Some(ch) = self.channels.get_mut(channel) else { return };
        if !ch.wants_presence() {
            return;
        }
        members.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        // The first list is news to nobody; a later one (a reconnect) is compared.
        let old = ch.members.replace(members.clone());
        let old = old.as_deref().unwrap_or(&members);
        let has = |list: &[(String, u32)], user: &str| list.iter().any(|(u, _)| u == user);
        for &sub in ch.watchers.iter() {
            for (user, _) in members.iter().filter(|(u, _)| !has(old, u)) {
                let (channel, user) = (channel.to_owned(), user.clone());
                self.events.push(Event::Join { sub, channel, user });
            }
            for (user, _) in old.iter().filter(|(u, _)| !has(&members, u)) {
                let (channel, user) = (channel.to_owned(), user.clone());
                self.events.push(Event::Leave { sub, channel, user });
            }
            let (channel, members) = (channel.to_owned(), members.clone());
            self.events.push(Event::Presence { sub, channel, members });
        }
    }

    /// A `join` (`joined`) or `leave` frame: the list changes and the watching handles are told,
    /// unless it says nothing new.
    pub(super) fn on_join(&mut self, channel: &str, user: String, joined: bool) {
        let Some(ch) = self.channels.get_mut(channel) else { return };
        let Some(members) = &mut ch.members else { return };
        let at = members.binary_search_by(|(u, _)| u.as_str().cmp(&user));
        match (at, joined) {
            (Err(i), true) => members.insert(i, (user.clone(), 1)),
            (Ok(i), false) => {
                members.remove(i);
            }
            _ => return,
        }
        for &sub in ch.watchers.iter() {
            let (channel, user) = (channel.to_owned(), user.clone());
            self.events.push(if joined {
                Event::Join { sub, channel, user }
            } else {
                Event::Leave { sub, channel, user }
            });
        }
    }
}
