//! Presence across nodes: every node's connections per user and channel, in Redis, and each
//! node's view of the other nodes' ones.
//!
//! **State.** Per channel a hash `<prefix>:{<stream>}:p:<channel>`: field `<node>|<user>` → that
//! node's connections of the user, and `#v`, the channel's version. A node writes only its own
//! fields, with one script that also bumps the version (Redis's clock in µs, or one more than the
//! last: versions only grow, even across a deleted hash) and publishes the change on the stream's
//! topic (`P`). The node remembers its channels in `<prefix>:node:<id>:pres`.
//!
//! **Views.** A node with presence subscribers of a channel holds a view of it: the other nodes'
//! fields as of a version. It is loaded (after the node receives the stream's topic) from the
//! hash, and kept by the changes published after that version; the sum per user goes to the
//! hub ([`EventHub::set_remote_presence`]), which tells the node's watchers who joined and left.
//! After a lost link every view is loaded again and the node publishes its own counts again.
//!
//! **Crashed nodes.** Nodes write a heartbeat into the sorted set `<prefix>:nodes`
//! ([`RedisConfig::presence_heartbeat`]); a node silent for [`RedisConfig::presence_timeout`] is
//! reaped by the first live node that claims it: its fields are removed, through the same
//! script, so every node sees its users leave.

use super::*;

/// KEYS: hash, node set. ARGV: field, count, topic, sharded, channel, node, user.
const UPDATE_LUA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local v = tonumber(redis.call('HGET', KEYS[1], '#v') or '0')
if now > v then v = now else v = v + 1 end
redis.call('HSET', KEYS[1], '#v', string.format('%.0f', v))
if tonumber(ARGV[2]) > 0 then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
  redis.call('SADD', KEYS[2], ARGV[5])
else
  redis.call('HDEL', KEYS[1], ARGV[1])
  if redis.call('HLEN', KEYS[1]) <= 1 then redis.call('DEL', KEYS[1]) end
end
local msg = 'P\n' .. ARGV[5] .. '\n' .. string.format('%.0f', v) .. '\n' .. ARGV[6] .. '\n' .. ARGV[7] .. '\n' .. ARGV[2]
if ARGV[4] == '1' then redis.call('SPUBLISH', ARGV[3], msg) else redis.call('PUBLISH', ARGV[3], msg) end
return 1
";

/// KEYS: nodes. ARGV: node. Records the heartbeat; returns whether the node was known.
const HEARTBEAT_LUA: &str = r"
local t = redis.call('TIME')
local known = redis.call('ZSCORE', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[1], tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000), ARGV[1])
if known then return 1 else return 0 end
";

/// KEYS: nodes. ARGV: timeout ms. The nodes silent for longer.
const SILENT_LUA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[1]))
";

/// One change of a node's count, as published.
pub(super) struct Change {
    pub(super) channel: String,
    pub(super) version: u64,
    pub(super) node: String,
    pub(super) user: String,
    pub(super) count: u32,
}

/// Parses a presence change `P \n channel \n version \n node \n user \n count`.
pub(super) fn parse_change(payload: &[u8]) -> Option<Change> {
    let text = std::str::from_utf8(payload).ok()?.strip_prefix("P\n")?;
    let mut parts = text.splitn(5, '\n');
    let channel = parts.next()?.to_owned();
    let version = parts.next()?.parse().ok()?;
    let node = parts.next()?.to_owned();
    let user = parts.next()?.to_owned();
    let count = parts.next()?.parse().ok()?;
    Some(Change { channel, version, node, user, count })
}

/// A node's view of one channel's presence on the other nodes.
#[derive(Default)]
pub(super) struct View {
    /// Changes after this version are not in `entries` yet.
    version: u64,
    /// (node, user) → connections.
    entries: HashMap<(String, String), u32>,
    /// While loading: the changes received meanwhile.
    pending: Option<Vec<Change>>,
    /// Becomes true once loaded.
    ready: Option<watch::Sender<bool>>,
}

impl View {
    /// Each user's connections on the other nodes.
    fn sums(&self) -> Vec<(Arc<str>, u32)> {
        let mut sums: HashMap<&str, u32> = HashMap::new();
        for ((_, user), n) in &self.entries {
            *sums.entry(user).or_default() += n;
        }
        sums.into_iter().map(|(u, n)| (Arc::from(u), n)).collect()
    }

    fn sum_of(&self, user: &str) -> u32 {
        self.entries.iter().filter(|((_, u), _)| u == user).map(|(_, n)| n).sum()
    }

    /// Applies a change newer than the view; the user whose sum changed, with the new sum.
    fn apply(&mut self, c: Change) -> Option<(String, u32)> {
        if c.version <= self.version {
            return None;
        }
        self.version = c.version;
        let before = self.sum_of(&c.user);
        let key = (c.node, c.user.clone());
        if c.count > 0 {
            self.entries.insert(key, c.count);
        } else {
            self.entries.remove(&key);
        }
        let after = self.sum_of(&c.user);
        (before != after).then_some((c.user, after))
    }
}

/// What a hash read answered: its version and fields.
struct Snapshot {
    version: u64,
    entries: HashMap<(String, String), u32>,
}

fn parse_snapshot(v: Value) -> Option<Snapshot> {
    let pairs: Vec<(Vec<u8>, Vec<u8>)> = match v {
        Value::Map(m) => m
            .iter()
            .map(|(k, v)| Some((bulk(k)?.to_vec(), bulk(v)?.to_vec())))
            .collect::<Option<_>>()?,
        Value::Array(a) => a
            .chunks(2)
            .map(|kv| match kv {
                [k, v] => Some((bulk(k)?.to_vec(), bulk(v)?.to_vec())),
                _ => None,
            })
            .collect::<Option<_>>()?,
        Value::Nil => Vec::new(),
        _ => return None,
    };
    let mut snap = Snapshot { version: 0, entries: HashMap::new() };
    for (k, v) in pairs {
        let (k, v) = (String::from_utf8(k).ok()?, String::from_utf8(v).ok()?);
        if k == "#v" {
            snap.version = v.parse().ok()?;
        } else if let Some((node, user)) = k.split_once('|') {
            snap.entries.insert((node.to_owned(), user.to_owned()), v.parse().ok()?);
        }
    }
    Some(snap)
}

impl Inner {
    fn presence_key(&self, ch: &Channel) -> String {
        format!("{}:{{{}}}:p:{ch}", self.keys.prefix, ch.stream())
    }

    fn node_channels_key(&self, node: &str) -> String {
        format!("{}:node:{node}:pres", self.keys.prefix)
    }

    fn nodes_key(&self) -> String {
        format!("{}:nodes", self.keys.prefix)
    }

    /// The hub's hook: this node's count of `user` on `channel` changed.
    pub(super) fn local_presence_changed(&self, channel: &Channel, user: &str, count: u32) {
        lock(&self.presence_out).insert((channel.to_string(), user.to_owned()), count);
        self.wake.notify_one();
    }

    /// Publishes this node's count of `user` on `channel` (0: none) to every node.
    async fn write_presence(
        &self,
        channel: &str,
        user: &str,
        count: u32,
    ) -> Result<(), RealtimeError> {
        let ch = Channel::parse(channel)?;
        let Some(mut con) = self.cmd().filter(|_| self.up.load(Relaxed)) else {
            return Err(unavailable("Redis is not reachable"));
        };
        let mut call = self.presence_update.prepare_invoke();
        call.key(self.presence_key(&ch))
            .key(self.node_channels_key(&self.node))
            .arg(format!("{}|{user}", self.node))
            .arg(count)
            .arg(self.keys.topic(&ch.stream().to_string()))
            .arg(if self.sharded.load(Relaxed) { "1" } else { "0" })
            .arg(channel)
            .arg(&self.node)
            .arg(user);
        let run = call.invoke_async::<u64>(&mut con);
        match tokio::time::timeout(self.cfg.command_timeout, run).await {
            Ok(Ok(_)) => {
                self.replied();
                Ok(())
            }
            Ok(Err(e)) => {
                self.failed(&e);
                Err(unavailable(e))
            }
            Err(_) => {
                self.slow_reply();
                Err(unavailable("Redis did not answer in time"))
            }
        }
    }

    /// Publishes the changes of this node's counts queued by the hub's hook.
    pub(super) async fn flush_presence(&self) {
        let changes: Vec<((String, String), u32)> = lock(&self.presence_out).drain().collect();
        for ((channel, user), count) in changes {
            if self.write_presence(&channel, &user, count).await.is_err() {
                // Published again with everything else once the link is back.
                return;
            }
        }
    }

    /// After a (re)connect: this node's counts published again, and its fields that no longer
    /// hold (members who left while the link was down) removed.
    pub(super) async fn reassert_presence(&self) -> Result<(), RealtimeError> {
        lock(&self.presence_out).clear();
        let local = self.hub.local_presence();
        let mut cmd = redis::cmd("SMEMBERS");
        cmd.arg(self.node_channels_key(&self.node));
        let channels: Vec<String> = self.command(cmd).await?;
        for channel in channels {
            let Ok(ch) = Channel::parse(&channel) else { continue };
            let snap = self.read_presence(&ch).await?;
            for (node, user) in snap.entries.keys().filter(|(n, _)| *n == self.node) {
                let _ = node;
                if !local.iter().any(|(c, u, _)| *c == ch && u == user) {
                    self.write_presence(&channel, user, 0).await?;
                }
            }
        }
        for (ch, user, count) in local {
            self.write_presence(&ch.to_string(), &user, count).await?;
        }
        Ok(())
    }

    /// Reads a channel's hash.
    async fn read_presence(&self, ch: &Channel) -> Result<Snapshot, RealtimeError> {
        let mut cmd = redis::cmd("HGETALL");
        cmd.arg(self.presence_key(ch));
        let v: Value = self.command(cmd).await?;
        parse_snapshot(v).ok_or_else(|| unavailable("malformed presence hash"))
    }

    /// Makes sure this node holds a loaded view of `ch` (the stream's topic must be active).
    pub(super) async fn ensure_view(&self, ch: &Channel) -> Result<(), RealtimeError> {
        let name = ch.to_string();
        // `None`: this call loads it.
        let waiting = {
            let mut views = lock(&self.views);
            match views.get(&name) {
                Some(View { ready: None, .. }) => return Ok(()),
                Some(View { ready: Some(tx), .. }) => Some(tx.subscribe()),
                None => {
                    let (tx, _) = watch::channel(false);
                    let view =
                        View { pending: Some(Vec::new()), ready: Some(tx), ..View::default() };
                    views.insert(name, view);
                    None
                }
            }
        };
        let Some(mut ready) = waiting else { return self.load_view(ch).await };
        let loaded = tokio::time::timeout(self.cfg.command_timeout, ready.wait_for(|r| *r))
            .await
            .is_ok_and(|r| r.is_ok());
        if loaded {
            Ok(())
        } else {
            Err(unavailable("presence not loaded in time"))
        }
    }

    /// Loads the view of `ch` (inserted as loading) from its hash, then the changes received
    /// meanwhile; the hub gets the sums.
    async fn load_view(&self, ch: &Channel) -> Result<(), RealtimeError> {
        let name = ch.to_string();
        let snap = self.read_presence(ch).await;
        let mut views = lock(&self.views);
        let Ok(snap) = snap else {
            views.remove(&name);
            return snap.map(|_| ());
        };
        let Some(view) = views.get_mut(&name) else { return Ok(()) };
        view.version = snap.version;
        view.entries = snap.entries.into_iter().filter(|((n, _), _)| *n != self.node).collect();
        for c in view.pending.take().unwrap_or_default() {
            view.apply(c);
        }
        if let Some(tx) = view.ready.take() {
            tx.send_replace(true);
        }
        let sums = view.sums();
        self.hub.sync_remote_presence(ch, &sums);
        Ok(())
    }

    /// A change published by a node.
    pub(super) fn on_presence_change(&self, c: Change) {
        if c.node == self.node {
            return;
        }
        let mut views = lock(&self.views);
        let Some(view) = views.get_mut(&c.channel) else { return };
        if let Some(pending) = &mut view.pending {
            pending.push(c);
            return;
        }
        let channel = c.channel.clone();
        if let Some((user, sum)) = view.apply(c) {
            if let Ok(ch) = Channel::parse(&channel) {
                // Under the views' lock: the hub sees the sums in the order they changed.
                self.hub.set_remote_presence(&ch, &user, sum);
            }
        }
    }

    /// The other nodes' counts of `ch` for a subscribe with presence, with the views locked:
    /// `f` runs while no change can come in between.
    pub(super) fn with_remote<T>(
        &self,
        ch: &Channel,
        f: impl FnOnce(Option<Vec<(Arc<str>, u32)>>) -> T,
    ) -> T {
        let views = lock(&self.views);
        let sums = views.get(&ch.to_string()).filter(|v| v.ready.is_none()).map(View::sums);
        f(sums)
    }

    /// Who is on `ch` on every node, for a `presence` command.
    pub(super) async fn presence_of(
        &self,
        ch: &Channel,
    ) -> Result<(Vec<PresenceMember>, bool), RealtimeError> {
        let name = ch.to_string();
        if lock(&self.views).get(&name).is_some_and(|v| v.ready.is_none()) {
            return Ok(self.hub.presence(ch));
        }
        let snap = self.read_presence(ch).await?;
        let mut users: std::collections::BTreeMap<String, u32> = Default::default();
        for ((_, user), n) in snap.entries {
            *users.entry(user).or_default() += n;
        }
        let truncated = users.len() > guts_realtime::wire::MAX_PRESENCE_MEMBERS;
        let members = users
            .into_iter()
            .take(guts_realtime::wire::MAX_PRESENCE_MEMBERS)
            .map(|(user, connections)| PresenceMember { user, connections })
            .collect();
        Ok((members, truncated))
    }

    /// Drops the views of a stream this node no longer receives.
    pub(super) fn drop_views(&self, stream: &Channel) {
        lock(&self.views)
            .retain(|name, _| Channel::parse(name).map_or(true, |c| !c.same_stream(stream)));
    }

    /// Loads every view again (after the link was lost: changes were missed).
    pub(super) async fn reload_views(&self) {
        let names: Vec<String> = {
            let mut views = lock(&self.views);
            for v in views.values_mut() {
                if v.pending.is_none() {
                    v.pending = Some(Vec::new());
                }
            }
            views.keys().cloned().collect()
        };
        for name in names {
            if let Ok(ch) = Channel::parse(&name) {
                let _ = self.load_view(&ch).await;
            }
        }
    }

    /// Records this node's heartbeat; if other nodes had reaped it, publishes its counts again.
    pub(super) async fn heartbeat(&self) -> Result<(), RealtimeError> {
        let Some(mut con) = self.cmd() else { return Err(unavailable("not connected")) };
        let mut call = self.heartbeat_script.prepare_invoke();
        call.key(self.nodes_key()).arg(&self.node);
        let known =
            tokio::time::timeout(self.cfg.command_timeout, call.invoke_async::<u64>(&mut con))
                .await
                .map_err(|_| unavailable("Redis did not answer in time"))?
                .map_err(unavailable)?;
        if known == 0 && self.registered.swap(true, Relaxed) {
            tracing::warn!(
                "redis broker: this node was taken for dead; publishing its presence again"
            );
            self.reassert_presence().await?;
        }
        Ok(())
    }

    /// Reaps the nodes silent for longer than the presence timeout: their users leave.
    pub(super) async fn reap(&self) -> Result<(), RealtimeError> {
        let Some(mut con) = self.cmd() else { return Err(unavailable("not connected")) };
        let timeout_ms = u64::try_from(self.cfg.presence_timeout.as_millis()).unwrap_or(u64::MAX);
        let mut call = self.silent_script.prepare_invoke();
        call.key(self.nodes_key()).arg(timeout_ms);
        let silent: Vec<String> =
            tokio::time::timeout(self.cfg.command_timeout, call.invoke_async(&mut con))
                .await
                .map_err(|_| unavailable("Redis did not answer in time"))?
                .map_err(unavailable)?;
        for dead in silent.into_iter().filter(|n| *n != self.node) {
            let mut claim = redis::cmd("SET");
            claim
                .arg(format!("{}:node:{dead}:reaper", self.keys.prefix))
                .arg(&self.node)
                .arg("NX")
                .arg("PX")
                .arg(timeout_ms.max(1000));
            let claimed: Option<String> = self.command(claim).await?;
            if claimed.is_none() {
                continue; // another node reaps it
            }
            tracing::warn!(node = %dead, "redis broker: a node stopped; its presence members leave");
            let mut cmd = redis::cmd("SMEMBERS");
            cmd.arg(self.node_channels_key(&dead));
            let channels: Vec<String> = self.command(cmd).await?;
            for channel in channels {
                let Ok(ch) = Channel::parse(&channel) else { continue };
                let snap = self.read_presence(&ch).await?;
                for (node, user) in snap.entries.keys().filter(|(n, _)| *n == dead) {
                    self.write_presence_as(node, &channel, user, 0).await?;
                }
            }
            let mut del = redis::cmd("DEL");
            del.arg(self.node_channels_key(&dead));
            self.command::<u64>(del).await?;
            let mut zrem = redis::cmd("ZREM");
            zrem.arg(self.nodes_key()).arg(&dead);
            self.command::<u64>(zrem).await?;
        }
        Ok(())
    }

    /// [`Inner::write_presence`] for the fields of another (dead) node.
    async fn write_presence_as(
        &self,
        node: &str,
        channel: &str,
        user: &str,
        count: u32,
    ) -> Result<(), RealtimeError> {
        let ch = Channel::parse(channel)?;
        let Some(mut con) = self.cmd() else { return Err(unavailable("not connected")) };
        let mut call = self.presence_update.prepare_invoke();
        call.key(self.presence_key(&ch))
            .key(self.node_channels_key(node))
            .arg(format!("{node}|{user}"))
            .arg(count)
            .arg(self.keys.topic(&ch.stream().to_string()))
            .arg(if self.sharded.load(Relaxed) { "1" } else { "0" })
            .arg(channel)
            .arg(node)
            .arg(user);
        tokio::time::timeout(self.cfg.command_timeout, call.invoke_async::<u64>(&mut con))
            .await
            .map_err(|_| unavailable("Redis did not answer in time"))?
            .map_err(unavailable)?;
        Ok(())
    }
}

/// The scripts of this module.
pub(super) fn scripts() -> (Script, Script, Script) {
    (Script::new(UPDATE_LUA), Script::new(HEARTBEAT_LUA), Script::new(SILENT_LUA))
}
