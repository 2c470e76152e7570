//! [`RedisBroker`] (feature `redis`): several hubs behind a load balancer share fan-out and
//! history through Redis. The in-memory [`EventHub`] stays the engine of each node; Redis numbers
//! events, keeps history and carries events between nodes.
//!
//! **Publish.** One Lua script, atomically: checks the cluster epoch, `INCR`s the stream's seq,
//! appends the frame (encoded once by the publishing node) to the stream's history (`XADD` with
//! `MAXLEN` = [`HubConfig::history_size`](guts_realtime::HubConfig), expiring after
//! [`HubConfig::history_ttl`](guts_realtime::HubConfig) without publishes) and publishes it with
//! `SPUBLISH` (sharded pub/sub, Redis ≥ 7; `PUBLISH` before) on the stream's topic. Because one
//! script does all of it, every node receives a stream's events in seq order, and a stream's seqs
//! are consecutive. A publish with an idempotency key is checked there too, against the keys of
//! the events still in the stream's history (a hash and a zset next to it, trimmed with it).
//!
//! **Fan-out.** A node subscribes to a stream's topic only while it has local subscribers
//! (refcounted: subscribes in flight plus the hub's subscribers of the stream), and unsubscribes
//! lazily, [`RedisConfig::unsubscribe_grace`] after the last one left. Subscribe and unsubscribe
//! commands go out in order from one task, so an unsubscribe followed at once by a resubscribe
//! always ends subscribed. Each received frame is handed as is to [`EventHub::deliver`]: no
//! re-encoding, one shared buffer for every local recipient.
//!
//! **Recovery.** A subscribe first makes sure the node receives the stream's topic, then reads the
//! stream's head and the history after `since` from Redis, and hands both to
//! [`EventHub::subscribe_sequenced`] (replay, then live, no gap, no duplicate). A client that
//! reconnects to any node recovers from the same history.
//!
//! **Epoch.** Stored in Redis (`<prefix>:epoch`), created if missing, and changed only when Redis
//! lost history: a Redis that restarts empty has no epoch, so the first node to reconnect creates a
//! new one; a Redis whose seqs went back (an old snapshot) gets a new one from the first node that
//! notices. Every node then adopts it ([`EventHub::change_epoch`]: its clients reconnect and report
//! a gap). With persistence (AOF) Redis keeps the epoch and the history across a restart and
//! clients recover.
//!
//! **Redis down.** Local connections keep being served; publishes fail (HTTP 503 / error
//! `unavailable` "broker unavailable"); a subscribe still succeeds locally but answers
//! `recovered: false` to `since` (the truth: the history cannot be read); `/healthz` answers 503
//! and `/metrics` has `guts_hub_broker_up 0`. The node reconnects with jittered exponential
//! backoff, resubscribes its topics, and catches its streams up from the history (a subscriber
//! that cannot be caught up is disconnected so it reconnects and recovers, never left with a silent
//! hole).
//!
//! **Preferences.** A user's notification preferences are a JSON value in Redis, read by whichever
//! node publishes the notification, so every node applies the same ones.
//!
//! **Revocation.** `revoke` and `disconnect_user` are published (plain `PUBLISH`) on the control
//! topic `<prefix>:control`, which every node subscribes to while its link is up; each node
//! applies them to its own connections. The call fails with `unavailable` when this node cannot
//! reach Redis (the caller retries); a node cut off from Redis at that moment does not see it.
//!
//! **Lost keys.** A stream's seq key expires [`HubConfig::history_ttl`](guts_realtime::HubConfig)
//! after its last publish unless a node is subscribed to it (nodes renew it while they are).
//! When Redis numbers a stream lower than a node has seen (the keys were evicted, expired or
//! restored from an old snapshot), the node's next delivery of it notices: that stream starts
//! over and its subscribers are disconnected, so they reconnect and report a gap — never a
//! silent loss. The node warns at connect when `maxmemory-policy` is not `noeviction`.
//!
//! **Presence** is shared through Redis too ([`presence`]: each node's counts per channel and user,
//! each node's view of the others', crashed nodes reaped). **Signals** are published on the
//! stream's topic (`S`, with the sending node, which skips its own); **history** is read from the
//! stream's history.
//!
//! Keys: `<prefix>:epoch`, `<prefix>:{<stream>}:seq` (the stream's last seq),
//! `<prefix>:{<stream>}:h` (the history), `<prefix>:{<stream>}:p:<channel>` (presence),
//! `<prefix>:nodes`, `<prefix>:node:<id>:pres`, `<prefix>:{user:<id>}:prefs`, topic
//! `<prefix>:{<stream>}`. A stream's keys share a hash slot, but the scripts also read the epoch
//! key, so they do not run on a Redis Cluster. Run Redis with `maxmemory-policy noeviction`: an evicted
//! seq key would restart a stream's numbering within the same epoch.

mod presence;

use guts_realtime::engine::{Engine, EngineFuture, Metric, MetricKind};
use guts_realtime::session::{backoff_delay, Rng};
use guts_realtime::subscription::item_of;
use guts_realtime::InvalidConfig;
use guts_realtime::{
    Channel, EventHub, EventKind, Frame, HistoryPage, HubClient, HubMetrics, HubStats,
    Notification, NotificationPreferences, NotifyOutcome, PresenceMember, Published, RealtimeError,
    RealtimeEvent, Recovery, Sequenced, ServerMessage, Since, SubscribeOptions, Subscription,
};
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, PushInfo, PushKind, RedisError, Script, Value};
use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch, Notify};

/// Configuration of a [`RedisBroker`]. History limits come from the hub's
/// [`HubConfig`](guts_realtime::HubConfig).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RedisConfig {
    /// `redis://host:port[/db]` (RESP3 is selected by the broker).
    pub url: String,
    /// Prefix of every key and topic, so several hub clusters can share one Redis. The default
    /// value is `guts`.
    pub prefix: String,
    /// How long a node stays subscribed to a stream's topic after its last local subscriber left.
    /// The default value is 5 s: subscribers that leave and come back (a page reload, a reconnect
    /// storm) cost no unsubscribe/resubscribe round trips.
    pub unsubscribe_grace: Duration,
    /// Longest wait for one Redis command (and to connect). The default value is 2 s.
    pub command_timeout: Duration,
    /// Least reconnect delay; attempts back off with the client session's full jitter, up to
    /// [`RedisConfig::reconnect_max`]. The default value is 100 ms.
    pub reconnect_min: Duration,
    /// Longest reconnect delay. The default value is 5 s.
    pub reconnect_max: Duration,
    /// How often an idle link is checked with `PING`. The default value is 1 s.
    pub health_interval: Duration,
    /// Sharded pub/sub (`SPUBLISH`/`SSUBSCRIBE`): `None` (the default) uses it when the server is
    /// Redis ≥ 7.
    pub sharded: Option<bool>,
    /// How often a node records that it is alive (for presence). The default value is 2 s.
    pub presence_heartbeat: Duration,
    /// How long a node may be silent before the others take it for dead and its presence
    /// members leave. The default value is 10 s: a crashed node's users are gone from every
    /// other node within about 12 s.
    pub presence_timeout: Duration,
}

impl RedisConfig {
    /// The defaults, for the Redis at `url`.
    pub fn new(url: impl Into<String>) -> Self {
        RedisConfig {
            url: url.into(),
            prefix: "guts".into(),
            unsubscribe_grace: Duration::from_secs(5),
            command_timeout: Duration::from_secs(2),
            reconnect_min: Duration::from_millis(100),
            reconnect_max: Duration::from_secs(5),
            health_interval: Duration::from_secs(1),
            sharded: None,
            presence_heartbeat: Duration::from_secs(2),
            presence_timeout: Duration::from_secs(10),
        }
    }
    /// Sets [`RedisConfig::prefix`].
    pub fn prefix(mut self, v: impl Into<String>) -> Self {
        self.prefix = v.into();
        self
    }
    /// Sets [`RedisConfig::reconnect_min`] and [`RedisConfig::reconnect_max`].
    pub fn reconnect(mut self, min: Duration, max: Duration) -> Self {
        self.reconnect_min = min;
        self.reconnect_max = max;
        self
    }
    /// Sets [`RedisConfig::presence_heartbeat`] and [`RedisConfig::presence_timeout`].
    pub fn presence(mut self, heartbeat: Duration, timeout: Duration) -> Self {
        self.presence_heartbeat = heartbeat;
        self.presence_timeout = timeout;
        self
    }

    /// Checks every bound: command timeout and health interval at least 10 ms, reconnect delays
    /// at least 1 ms and the longest at least the least. [`RedisBroker::connect`] refuses a
    /// config that fails it.
    ///
    /// # Errors
    /// The first field out of bounds.
    pub fn validate(&self) -> Result<(), InvalidConfig> {
        use InvalidConfig as E;
        let (ms, ten_ms) = (Duration::from_millis(1), Duration::from_millis(10));
        E::check(self.command_timeout >= ten_ms, "RedisConfig.command_timeout", "at least 10 ms")?;
        E::check(self.health_interval >= ten_ms, "RedisConfig.health_interval", "at least 10 ms")?;
        E::check(self.reconnect_min >= ms, "RedisConfig.reconnect_min", "at least 1 ms")?;
        let max_ok = self.reconnect_max >= self.reconnect_min;
        E::check(max_ok, "RedisConfig.reconnect_max", "at least reconnect_min")?;
        let beat_ok = self.presence_heartbeat >= ten_ms;
        E::check(beat_ok, "RedisConfig.presence_heartbeat", "at least 10 ms")?;
        let timeout_ok = self.presence_timeout >= 2 * self.presence_heartbeat;
        E::check(timeout_ok, "RedisConfig.presence_timeout", "at least twice presence_heartbeat")
    }
}

guts_realtime::config_setters!(RedisConfig {
    unsubscribe_grace: Duration,
    command_timeout: Duration,
    health_interval: Duration,
    sharded: Option<bool>,
});

/// Why [`RedisBroker::connect`] failed.
#[derive(Debug, thiserror::Error)]
#[error("redis broker: {0}")]
pub struct BrokerError(String);

/// The broker's counters and state, for `/metrics`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BrokerMetrics {
    /// Whether Redis is reachable now.
    pub up: bool,
    /// Whether sharded pub/sub is in use.
    pub sharded: bool,
    /// Stream topics this node is subscribed to (or about to be).
    pub topics: usize,
    /// Events and notifications this node published through Redis.
    pub published: u64,
    /// Publishes that failed (Redis unreachable, epoch changed, timeout).
    pub publish_errors: u64,
    /// Events received from Redis pub/sub.
    pub received: u64,
    /// Topic subscribe commands sent.
    pub topic_subscribes: u64,
    /// Topic unsubscribe commands sent (after the grace period).
    pub topic_unsubscribes: u64,
    /// Successful (re)connections to Redis.
    pub connects: u64,
    /// Times the cluster epoch changed under this node.
    pub epoch_changes: u64,
    /// Subscribes answered without history because Redis could not be read.
    pub unrecovered_subscribes: u64,
    /// Streams whose seq went back in Redis (their keys lost: evicted, expired, an old
    /// snapshot), seen by a delivery: their subscribers were disconnected to report a gap.
    pub rewinds: u64,
    /// Whether Redis's `maxmemory-policy` may evict this cluster's keys (anything but
    /// `noeviction`), as read at the last connect.
    pub may_evict: bool,
}

#[derive(Default)]
struct Counters {
    published: AtomicU64,
    publish_errors: AtomicU64,
    received: AtomicU64,
    topic_subscribes: AtomicU64,
    topic_unsubscribes: AtomicU64,
    connects: AtomicU64,
    epoch_changes: AtomicU64,
    unrecovered: AtomicU64,
    rewinds: AtomicU64,
}

/// Commands in a row without a reply in time after which the link counts as dead.
const SLOW_REPLIES: u32 = 3;

/// The node's subscription to one stream's topic.
struct Topic {
    /// The stream (a channel without filter).
    channel: Channel,
    /// Subscribes in progress that rely on this topic.
    users: usize,
    /// Whether Redis confirmed the subscription on the current link.
    active: watch::Sender<bool>,
    /// When the topic was first seen without any local subscriber.
    idle_since: Option<Instant>,
}

struct Keys {
    prefix: String,
}

impl Keys {
    fn epoch(&self) -> String {
        format!("{}:epoch", self.prefix)
    }
    fn seq(&self, stream: &str) -> String {
        format!("{}:{{{stream}}}:seq", self.prefix)
    }
    fn history(&self, stream: &str) -> String {
        format!("{}:{{{stream}}}:h", self.prefix)
    }
    /// Idempotency keys of the stream's publishes still in its history: field → seq.
    fn idempotency(&self, stream: &str) -> String {
        format!("{}:{{{stream}}}:k", self.prefix)
    }
    /// The same fields by seq, to drop them as the history moves on.
    fn idempotency_order(&self, stream: &str) -> String {
        format!("{}:{{{stream}}}:kz", self.prefix)
    }
    fn topic(&self, stream: &str) -> String {
        format!("{}:{{{stream}}}", self.prefix)
    }
    fn preferences(&self, user_id: &str) -> String {
        format!("{}:{{user:{user_id}}}:prefs", self.prefix)
    }
    /// The (plain, never sharded) topic every node listens to for cluster-wide commands.
    fn control(&self) -> String {
        format!("{}:control", self.prefix)
    }
}

/// A cluster-wide command, published on the control topic and applied by every node.
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
enum Control {
    /// [`EventHub::revoke_local`].
    Revoke { user: String, channel: String },
    /// [`EventHub::disconnect_user_local`].
    Disconnect { user: String },
}

/// KEYS: epoch, seq, history, idempotency keys (hash: field → seq), their order (zset: field by
/// seq). ARGV: epoch, maxlen, ttl ms, topic, channel, kind, body, sharded, item, idempotency field
/// (`channel NL key`, '' for none). Returns {seq, nodes, duplicate}: a field still in the
/// history window answers its first seq and publishes nothing; the fields of events that left
/// the history are dropped as the history moves on.
const PUBLISH_LUA: &str = r"
local e = redis.call('GET', KEYS[1])
if e ~= ARGV[1] then return redis.error_reply('GUTSEPOCH ' .. (e or '-')) end
local maxlen = tonumber(ARGV[2])
local keyed = ARGV[10] ~= '' and maxlen > 0 and tonumber(ARGV[3]) > 0
if keyed then
  local first = redis.call('HGET', KEYS[4], ARGV[10])
  local head = tonumber(redis.call('GET', KEYS[2]) or '0')
  if first and tonumber(first) > head - maxlen then return {tonumber(first), 0, 1} end
end
local seq = redis.call('INCR', KEYS[2])
if tonumber(ARGV[3]) > 0 then redis.call('PEXPIRE', KEYS[2], ARGV[3]) end
local frame = ARGV[7] .. seq .. '}'
if maxlen > 0 and tonumber(ARGV[3]) > 0 then
  local t = redis.call('TIME')
  redis.call('XADD', KEYS[3], 'MAXLEN', ARGV[2], '0-' .. seq, 'f', frame, 'c', ARGV[5], 'k', ARGV[6], 't', t[1], 'i', ARGV[9])
  redis.call('PEXPIRE', KEYS[3], ARGV[3])
end
if keyed then
  redis.call('HSET', KEYS[4], ARGV[10], seq)
  redis.call('ZADD', KEYS[5], seq, ARGV[10])
  local gone = redis.call('ZRANGEBYSCORE', KEYS[5], '-inf', seq - maxlen)
  if #gone > 0 then
    redis.call('HDEL', KEYS[4], unpack(gone))
    redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', seq - maxlen)
  end
  redis.call('PEXPIRE', KEYS[4], ARGV[3])
  redis.call('PEXPIRE', KEYS[5], ARGV[3])
end
local msg = frame .. '\n' .. seq .. '\n' .. ARGV[5] .. '\n' .. ARGV[6] .. '\n' .. ARGV[9]
local n
if ARGV[8] == '1' then n = redis.call('SPUBLISH', ARGV[4], msg) else n = redis.call('PUBLISH', ARGV[4], msg) end
return {seq, n, 0}
";

/// KEYS: epoch, seq, history. ARGV: since ('' for none), count.
const READ_LUA: &str = r"
local e = redis.call('GET', KEYS[1])
local head = tonumber(redis.call('GET', KEYS[2]) or '0')
local entries = {}
if ARGV[1] ~= '' and head > tonumber(ARGV[1]) then
  entries = redis.call('XRANGE', KEYS[3], '(0-' .. ARGV[1], '+', 'COUNT', ARGV[2])
end
local t = redis.call('TIME')
return {e or '', head, t[1], entries}
";

/// KEYS: epoch, seq, history. ARGV: count. The newest `count` entries, newest first.
const HISTORY_LUA: &str = r"
local e = redis.call('GET', KEYS[1])
local head = tonumber(redis.call('GET', KEYS[2]) or '0')
local entries = redis.call('XREVRANGE', KEYS[3], '+', '-', 'COUNT', ARGV[1])
local t = redis.call('TIME')
return {e or '', head, t[1], entries}
";

/// KEYS: epoch. ARGV: expected ('' = only create if missing), candidate. Returns the epoch now.
const EPOCH_LUA: &str = r"
local e = redis.call('GET', KEYS[1])
if (not e) or (ARGV[1] ~= '' and e == ARGV[1]) then
  redis.call('SET', KEYS[1], ARGV[2])
  return ARGV[2]
end
return e
";

struct Inner {
    hub: Arc<EventHub>,
    cfg: RedisConfig,
    client: redis::Client,
    keys: Keys,
    publish: Script,
    read: Script,
    epoch_script: Script,
    /// The command connection of the current link.
    cmd: Mutex<Option<MultiplexedConnection>>,
    up: AtomicBool,
    /// Set when the link failed; the supervisor then reconnects.
    broken: AtomicBool,
    /// Commands in a row that got no reply in time.
    slow: AtomicU32,

    /// Set when the cluster epoch may have changed; the supervisor then rereads it.
    epoch_check: AtomicBool,
    /// Set once this node has seen the Redis history (so an empty Redis means it was lost).
    seen_redis: AtomicBool,
    sharded: AtomicBool,
    /// `maxmemory-policy` is not `noeviction` (read at connect).
    may_evict: AtomicBool,
    wake: Notify,
    topics: Mutex<HashMap<String, Topic>>,
    subscribe_tx: mpsc::UnboundedSender<String>,
    counters: Counters,
    /// This node's id (presence fields, signals it sent).
    node: String,
    history_script: Script,
    presence_update: Script,
    heartbeat_script: Script,
    silent_script: Script,
    /// Changes of this node's presence counts not yet published: (channel, user) → count.
    presence_out: Mutex<HashMap<(String, String), u32>>,
    /// This node's views of the other nodes' presence, by channel.
    views: Mutex<HashMap<String, presence::View>>,
    /// This node recorded a heartbeat once.
    registered: AtomicBool,
}

/// Stops the supervisor when the last [`RedisBroker`] handle is dropped.
struct StopOnDrop(watch::Sender<bool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.send_replace(true);
    }
}

/// The Redis engine of a hub cluster (design: `docs/DEPLOY.md` and this file's module docs).
/// Cheap to clone; the background task (reconnects, topic subscriptions) stops when the last
/// clone is dropped.
///
/// ```no_run
/// use guts_realtime::EventHub;
/// use guts_realtime_server::{serve, RedisBroker, RedisConfig, ServerConfig};
/// use std::sync::Arc;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let hub = Arc::new(EventHub::new());
/// let broker = RedisBroker::connect(hub.clone(), RedisConfig::new("redis://127.0.0.1:6379")).await?;
/// let config = ServerConfig::default().publish_key("pubkey");
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:7800").await?;
/// serve(Arc::new(broker), listener, config, std::future::pending()).await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisBroker {
    inner: Arc<Inner>,
    _stop: Arc<StopOnDrop>,
}

impl fmt::Debug for RedisBroker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisBroker")
            .field("prefix", &self.inner.cfg.prefix)
            .field("up", &self.is_up())
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn unavailable(why: impl fmt::Display) -> RealtimeError {
    RealtimeError::Unavailable(format!("broker unavailable: {why}; retry later"))
}

fn new_epoch() -> String {
    let n = Rng::from_os().next_u64();
    let mut s = String::with_capacity(16);
    for i in 0..16 {
        s.push(char::from(b"0123456789abcdef"[((n >> (i * 4)) & 0xf) as usize]));
    }
    s
}

/// `url` with `protocol=resp3` (the broker needs RESP3 push messages).
fn resp3_url(url: &str) -> String {
    if url.contains("protocol=") {
        url.to_owned()
    } else if url.contains('?') {
        format!("{url}&protocol=resp3")
    } else {
        format!("{url}?protocol=resp3")
    }
}

/// The frame of `message` without its closing `}`, followed by `,"seq":` (the script appends the
/// seq and the `}`). `seq` is the last key of event and notification frames.
fn body_of(message: &ServerMessage) -> String {
    let mut s = message.encode().as_str().to_owned();
    s.pop();
    s.push_str(",\"seq\":");
    s
}

/// Parses a pub/sub payload `frame \n seq \n channel \n kind \n item`.
fn parse_message(payload: Vec<u8>) -> Option<Sequenced> {
    let mut text = String::from_utf8(payload).ok()?;
    let mut parts = text.rsplitn(5, '\n');
    let item = parse_item(parts.next()?)?;
    let kind = parts.next()?;
    let channel = parts.next()?;
    let seq: u64 = parts.next()?.parse().ok()?;
    let frame_len = parts.next()?.len();
    let kind = if kind == "-" { None } else { Some(EventKind::from_wire(kind)?) };
    let channel = Channel::parse(channel).ok()?;
    text.truncate(frame_len);
    Some(Sequenced { seq, channel, kind, item, frame: Frame::from_string(text) })
}

/// An item as stored (`-` for none).
fn parse_item(s: &str) -> Option<Option<u64>> {
    if s == "-" {
        Some(None)
    } else {
        s.parse().ok().map(Some)
    }
}

/// Parses a signal `S \n node \n channel \n frame`.
fn parse_signal(payload: &[u8]) -> Option<(&str, Channel, Frame)> {
    let text = std::str::from_utf8(payload).ok()?.strip_prefix("S\n")?;
    let mut parts = text.splitn(3, '\n');
    let node = parts.next()?;
    let channel = Channel::parse(parts.next()?).ok()?;
    Some((node, channel, Frame::from_string(parts.next()?.to_owned())))
}

fn bulk(v: &Value) -> Option<&[u8]> {
    match v {
        Value::BulkString(b) => Some(b),
        Value::SimpleString(s) => Some(s.as_bytes()),
        Value::VerbatimString { text, .. } => Some(text.as_bytes()),
        _ => None,
    }
}

fn int(v: &Value) -> Option<u64> {
    match v {
        Value::Int(n) => u64::try_from(*n).ok(),
        other => std::str::from_utf8(bulk(other)?).ok()?.parse().ok(),
    }
}

/// What the read script returned.
struct Read {
    epoch: String,
    head: u64,
    /// Redis's clock, unix seconds.
    now: u64,
    /// History entries with their time (unix seconds), in seq order.
    events: Vec<(Sequenced, u64)>,
}

fn parse_read(v: Value) -> Option<Read> {
    let Value::Array(items) = v else { return None };
    let [epoch, head, now, entries] = items.as_slice() else { return None };
    let epoch = String::from_utf8(bulk(epoch)?.to_vec()).ok()?;
    let (head, now) = (int(head)?, int(now)?);
    let Value::Array(entries) = entries else { return None };
    let mut events = Vec::with_capacity(entries.len());
    for e in entries {
        let Value::Array(pair) = e else { return None };
        let [id, fields] = pair.as_slice() else { return None };
        let seq: u64 = std::str::from_utf8(bulk(id)?).ok()?.strip_prefix("0-")?.parse().ok()?;
        let fields: Vec<&[u8]> = match fields {
            Value::Array(f) => f.iter().map(bulk).collect::<Option<_>>()?,
            Value::Map(m) => {
                m.iter().flat_map(|(k, v)| [bulk(k), bulk(v)]).collect::<Option<_>>()?
            }
            _ => return None,
        };
        let (mut frame, mut channel, mut kind, mut t, mut item) = (None, None, None, 0, None);
        for kv in fields.chunks(2) {
            let [k, v] = kv else { return None };
            match *k {
                b"f" => frame = Some(String::from_utf8(v.to_vec()).ok()?),
                b"c" => channel = Some(Channel::parse(std::str::from_utf8(v).ok()?).ok()?),
                b"k" => {
                    let k = std::str::from_utf8(v).ok()?;
                    kind = if k == "-" { None } else { Some(EventKind::from_wire(k)?) };
                }
                b"t" => t = std::str::from_utf8(v).ok()?.parse().ok()?,
                b"i" => item = parse_item(std::str::from_utf8(v).ok()?)?,
                _ => {}
            }
        }
        let frame = Frame::from_string(frame?);
        let ev = Sequenced { seq, channel: channel?, kind, item, frame };
        events.push((ev, t));
    }
    Some(Read { epoch, head, now, events })
}

/// Holds a topic for a subscribe in progress (released on drop, even if the subscribe is
/// cancelled).
struct TopicUse<'a> {
    inner: &'a Inner,
    stream: String,
}

impl Drop for TopicUse<'_> {
    fn drop(&mut self) {
        if let Some(t) = lock(&self.inner.topics).get_mut(&self.stream) {
            t.users = t.users.saturating_sub(1);
        }
    }
}

impl RedisBroker {
    /// Starts the broker for `hub`: connects to Redis (waiting up to
    /// [`RedisConfig::command_timeout`] for the first link), adopts the cluster epoch (creating
    /// it if missing) and keeps reconnecting in the background. If Redis cannot be reached yet,
    /// the broker starts anyway, unhealthy, and the hub serves its local connections meanwhile.
    ///
    /// # Errors
    /// An invalid URL, or a config that fails [`RedisConfig::validate`].
    pub async fn connect(hub: Arc<EventHub>, cfg: RedisConfig) -> Result<RedisBroker, BrokerError> {
        cfg.validate().map_err(|e| BrokerError(e.to_string()))?;
        let client = redis::Client::open(resp3_url(&cfg.url))
            .map_err(|e| BrokerError(format!("invalid url: {e}")))?;
        let (subscribe_tx, subscribe_rx) = mpsc::unbounded_channel();
        let (stop_tx, stop_rx) = watch::channel(false);
        let (presence_update, heartbeat_script, silent_script) = presence::scripts();
        let inner = Arc::new(Inner {
            node: new_epoch(),
            history_script: Script::new(HISTORY_LUA),
            presence_update,
            heartbeat_script,
            silent_script,
            presence_out: Mutex::new(HashMap::new()),
            views: Mutex::new(HashMap::new()),
            registered: AtomicBool::new(false),
            hub,
            keys: Keys { prefix: cfg.prefix.clone() },
            cfg,
            client,
            publish: Script::new(PUBLISH_LUA),
            read: Script::new(READ_LUA),
            epoch_script: Script::new(EPOCH_LUA),
            cmd: Mutex::new(None),
            up: AtomicBool::new(false),
            broken: AtomicBool::new(false),
            slow: AtomicU32::new(0),

            epoch_check: AtomicBool::new(false),
            seen_redis: AtomicBool::new(false),
            sharded: AtomicBool::new(false),
            may_evict: AtomicBool::new(false),
            wake: Notify::new(),
            topics: Mutex::new(HashMap::new()),
            subscribe_tx,
            counters: Counters::default(),
        });
        let weak = Arc::downgrade(&inner);
        inner.hub.on_presence(move |channel, user, count| {
            if let Some(inner) = weak.upgrade() {
                inner.local_presence_changed(channel, user, count);
            }
        });
        let (up_tx, mut up_rx) = watch::channel(false);
        tokio::spawn(supervise(Arc::downgrade(&inner), subscribe_rx, stop_rx, up_tx));
        let wait = inner.cfg.command_timeout + Duration::from_millis(500);
        if tokio::time::timeout(wait, up_rx.wait_for(|up| *up)).await.is_err() {
            tracing::warn!(
                "redis broker: Redis not reachable yet; serving local connections and retrying"
            );
        }
        Ok(RedisBroker { inner, _stop: Arc::new(StopOnDrop(stop_tx)) })
    }

    /// Whether Redis is reachable now.
    pub fn is_up(&self) -> bool {
        self.inner.up.load(Relaxed)
    }

    /// The hub this broker serves.
    pub fn hub(&self) -> &Arc<EventHub> {
        &self.inner.hub
    }

    /// The counters and state.
    pub fn metrics(&self) -> BrokerMetrics {
        let c = &self.inner.counters;
        BrokerMetrics {
            up: self.is_up(),
            sharded: self.inner.sharded.load(Relaxed),
            topics: lock(&self.inner.topics).len(),
            published: c.published.load(Relaxed),
            publish_errors: c.publish_errors.load(Relaxed),
            received: c.received.load(Relaxed),
            topic_subscribes: c.topic_subscribes.load(Relaxed),
            topic_unsubscribes: c.topic_unsubscribes.load(Relaxed),
            connects: c.connects.load(Relaxed),
            epoch_changes: c.epoch_changes.load(Relaxed),
            unrecovered_subscribes: c.unrecovered.load(Relaxed),
            rewinds: c.rewinds.load(Relaxed),
            may_evict: self.inner.may_evict.load(Relaxed),
        }
    }

    /// Publishes an event to every node: Redis numbers it (the returned seq), keeps it in the
    /// stream's history, and every node with subscribers of the stream fans it out. `delivered`
    /// is the number of nodes Redis sent it to.
    ///
    /// # Errors
    /// [`RealtimeError::InvalidChannel`]; [`RealtimeError::Unavailable`] ("broker unavailable")
    /// when Redis cannot be reached or the epoch just changed.
    pub async fn publish(&self, event: RealtimeEvent) -> Result<Published, RealtimeError> {
        self.publish_once(event, None).await
    }

    /// [`RedisBroker::publish`], once per `idempotency_key` and channel on every node while the
    /// first event with that key is in the stream's history (kept in Redis with it): a repeat
    /// answers that event's seq with [`Published::duplicate`] set and publishes nothing.
    ///
    /// # Errors
    /// As [`RedisBroker::publish`].
    pub async fn publish_once(
        &self,
        mut event: RealtimeEvent,
        idempotency_key: Option<&str>,
    ) -> Result<Published, RealtimeError> {
        let ch = Channel::parse(&event.channel)?;
        event.channel = ch.to_string();
        event.seq = None;
        let kind = event.event;
        let item = item_of(&event.data);
        let field = idempotency_key.map(|k| format!("{ch}\n{k}"));
        let body = body_of(&ServerMessage::Event(event));
        self.inner.publish_body(&ch, Some(kind), item, body, field.as_deref()).await
    }

    /// Publishes a notification on `user:<user_id>` if that user's preferences (shared by every
    /// node: [`RedisBroker::set_preferences`]) enable its type.
    ///
    /// # Errors
    /// As [`RedisBroker::publish`].
    pub async fn notify(&self, notification: Notification) -> Result<NotifyOutcome, RealtimeError> {
        let ch = Channel::user(&notification.user_id)?;
        let prefs = self.preferences(&notification.user_id).await?;
        if !prefs.is_enabled(notification.notification_type) {
            return Ok(NotifyOutcome::Suppressed);
        }
        let body = body_of(&ServerMessage::Notification {
            channel: ch.to_string(),
            notification,
            seq: None,
        });
        self.inner.publish_body(&ch, None, None, body, None).await.map(NotifyOutcome::Delivered)
    }

    /// Stores a user's notification preferences in Redis, for every node.
    ///
    /// # Errors
    /// [`RealtimeError::InvalidChannel`] for a user id that is no valid `user:` channel;
    /// [`RealtimeError::Unavailable`] when Redis cannot be reached.
    pub async fn set_preferences(
        &self,
        preferences: NotificationPreferences,
    ) -> Result<(), RealtimeError> {
        Channel::user(&preferences.user_id)?;
        let key = self.inner.keys.preferences(&preferences.user_id);
        let value = serde_json::to_string(&preferences)?;
        let mut cmd = redis::cmd("SET");
        cmd.arg(key).arg(value);
        self.inner.command::<()>(cmd).await
    }

    /// A user's notification preferences, as stored in Redis (the defaults if never set).
    ///
    /// # Errors
    /// [`RealtimeError::Unavailable`] when Redis cannot be reached.
    pub async fn preferences(
        &self,
        user_id: &str,
    ) -> Result<NotificationPreferences, RealtimeError> {
        let mut cmd = redis::cmd("GET");
        cmd.arg(self.inner.keys.preferences(user_id));
        let stored: Option<String> = self.inner.command(cmd).await?;
        match stored.map(|v| serde_json::from_str::<NotificationPreferences>(&v)) {
            Some(Ok(p)) => Ok(p),
            Some(Err(e)) => Err(unavailable(format!("stored preferences of {user_id}: {e}"))),
            None => Ok(NotificationPreferences::for_user(user_id)),
        }
    }

    /// Subscribes a client of this node, with recovery from the cluster's history: the
    /// counterpart of [`EventHub::subscribe`] (queues the `subscribed` reply echoing `id`, and
    /// the replay).
    ///
    /// # Errors
    /// As [`EventHub::subscribe`].
    pub async fn subscribe(
        &self,
        client: &Arc<HubClient>,
        channel: &str,
        opts: SubscribeOptions<'_>,
    ) -> Result<Subscription, RealtimeError> {
        let inner = &*self.inner;
        let ch = Channel::parse(channel)?;
        let stream = ch.stream();
        let name = stream.to_string();
        let (_use, ready) = inner.receive(&name, &stream).await;
        let mut recovery = if ready { inner.recovery(&name, opts.since).await } else { None };
        if recovery.is_none() {
            inner.counters.unrecovered.fetch_add(1, Relaxed);
        }
        if opts.presence && ready && inner.ensure_view(&ch).await.is_err() {
            tracing::warn!(channel = %ch, "redis broker: presence of the other nodes not loaded");
        }
        // With the views locked, so that no change of the other nodes comes in between.
        inner.with_remote(&ch, |remote| {
            if let Some(r) = &mut recovery {
                r.presence = remote.filter(|_| opts.presence);
            }
            inner.hub.subscribe_sequenced(client, channel, opts, recovery)
        })
    }

    /// Sends a signal frame to the subscribers of `channel` on every node but `sender`.
    ///
    /// # Errors
    /// [`RealtimeError::Unavailable`] when Redis cannot be reached (this node's subscribers got
    /// it).
    pub async fn signal(
        &self,
        sender: &Arc<HubClient>,
        channel: &Channel,
        frame: Frame,
    ) -> Result<(), RealtimeError> {
        self.inner.hub.signal_local(channel, &frame, Some(sender));
        let topic = self.inner.keys.topic(&channel.stream().to_string());
        let msg = format!("S\n{}\n{channel}\n{}", self.inner.node, frame.as_str());
        let publish = if self.inner.sharded.load(Relaxed) { "SPUBLISH" } else { "PUBLISH" };
        let mut cmd = redis::cmd(publish);
        cmd.arg(topic).arg(msg);
        self.inner.command::<u64>(cmd).await.map(|_| ())
    }

    /// The last `limit` events of `channel` in the cluster's history.
    ///
    /// # Errors
    /// [`RealtimeError::Unavailable`] when Redis cannot be reached or the epoch just changed.
    pub async fn history(
        &self,
        channel: &Channel,
        limit: usize,
    ) -> Result<HistoryPage, RealtimeError> {
        self.inner.history(channel, limit).await
    }
}

impl Engine for RedisBroker {
    fn hub(&self) -> &EventHub {
        &self.inner.hub
    }

    fn subscribe<'a>(
        &'a self,
        client: &'a Arc<HubClient>,
        channel: &'a str,
        opts: SubscribeOptions<'a>,
    ) -> EngineFuture<'a, Result<Subscription, RealtimeError>> {
        Box::pin(RedisBroker::subscribe(self, client, channel, opts))
    }

    fn presence<'a>(
        &'a self,
        channel: &'a Channel,
    ) -> EngineFuture<'a, Result<(Vec<PresenceMember>, bool), RealtimeError>> {
        Box::pin(self.inner.presence_of(channel))
    }

    fn history<'a>(
        &'a self,
        _client: &'a Arc<HubClient>,
        channel: &'a Channel,
        limit: usize,
    ) -> EngineFuture<'a, Result<HistoryPage, RealtimeError>> {
        Box::pin(RedisBroker::history(self, channel, limit))
    }

    fn signal<'a>(
        &'a self,
        sender: &'a Arc<HubClient>,
        channel: &'a Channel,
        frame: Frame,
    ) -> EngineFuture<'a, Result<(), RealtimeError>> {
        Box::pin(RedisBroker::signal(self, sender, channel, frame))
    }

    fn publish_with(
        &self,
        event: RealtimeEvent,
        idempotency_key: Option<String>,
    ) -> EngineFuture<'_, Result<Published, RealtimeError>> {
        Box::pin(async move { self.publish_once(event, idempotency_key.as_deref()).await })
    }

    fn notify(
        &self,
        notification: Notification,
    ) -> EngineFuture<'_, Result<NotifyOutcome, RealtimeError>> {
        Box::pin(RedisBroker::notify(self, notification))
    }

    fn set_preferences(
        &self,
        preferences: NotificationPreferences,
    ) -> EngineFuture<'_, Result<(), RealtimeError>> {
        Box::pin(RedisBroker::set_preferences(self, preferences))
    }

    fn preferences<'a>(
        &'a self,
        user_id: &'a str,
    ) -> EngineFuture<'a, Result<NotificationPreferences, RealtimeError>> {
        Box::pin(RedisBroker::preferences(self, user_id))
    }

    fn revoke<'a>(
        &'a self,
        user: &'a str,
        channel: &'a Channel,
    ) -> EngineFuture<'a, Result<(), RealtimeError>> {
        let control = Control::Revoke { user: user.to_owned(), channel: channel.to_string() };
        Box::pin(self.inner.control(control))
    }

    fn disconnect_user<'a>(&'a self, user: &'a str) -> EngineFuture<'a, Result<(), RealtimeError>> {
        Box::pin(self.inner.control(Control::Disconnect { user: user.to_owned() }))
    }

    fn is_up(&self) -> bool {
        RedisBroker::is_up(self)
    }

    /// The hub's counters, with the events and notifications this node published through Redis
    /// as `total_events` (the hub itself numbers none).
    fn stats(&self) -> HubStats {
        let mut stats = self.inner.hub.stats();
        stats.total_events = self.inner.counters.published.load(Relaxed);
        stats
    }

    fn metrics(&self) -> HubMetrics {
        let mut metrics = self.inner.hub.metrics();
        metrics.events_published = self.inner.counters.published.load(Relaxed);
        metrics
    }

    fn extra_metrics(&self) -> Vec<Metric> {
        let b = RedisBroker::metrics(self);
        let m = |name, kind, help, value| Metric { name, kind, help, value };
        let (gauge, counter) = (MetricKind::Gauge, MetricKind::Counter);
        vec![
            m("broker_up", gauge, "1 while Redis is reachable, 0 otherwise.", u64::from(b.up)),
            m("broker_sharded", gauge, "1 when sharded pub/sub is in use.", u64::from(b.sharded)),
            m("broker_topics", gauge, "Stream topics subscribed on Redis.", b.topics as u64),
            m("broker_published_total", counter, "Events published through Redis.", b.published),
            m(
                "broker_publish_errors_total",
                counter,
                "Publishes that failed (Redis unreachable, epoch changed, timeout).",
                b.publish_errors,
            ),
            m("broker_received_total", counter, "Events received from Redis.", b.received),
            m(
                "broker_topic_subscribes_total",
                counter,
                "Topic subscribe commands sent to Redis.",
                b.topic_subscribes,
            ),
            m(
                "broker_topic_unsubscribes_total",
                counter,
                "Topic unsubscribe commands sent to Redis (after the grace period).",
                b.topic_unsubscribes,
            ),
            m("broker_connects_total", counter, "Successful connections to Redis.", b.connects),
            m(
                "broker_epoch_changes_total",
                counter,
                "Cluster epoch changes (Redis lost history).",
                b.epoch_changes,
            ),
            m(
                "broker_unrecovered_subscribes_total",
                counter,
                "Subscribes answered without history because Redis could not be read.",
                b.unrecovered_subscribes,
            ),
            m(
                "broker_rewinds_total",
                counter,
                "Streams whose seq went back in Redis (keys lost): subscribers told of a gap.",
                b.rewinds,
            ),
            m(
                "broker_redis_may_evict",
                gauge,
                "1 when Redis maxmemory-policy is not noeviction (keys may be lost).",
                u64::from(b.may_evict),
            ),
        ]
    }
}

impl Inner {
    /// Publishes a cluster-wide command; every node with a live link (this one included)
    /// applies it.
    async fn control(&self, control: Control) -> Result<(), RealtimeError> {
        let body = serde_json::to_string(&control).map_err(RealtimeError::Serialization)?;
        let mut publish = redis::cmd("PUBLISH");
        publish.arg(self.keys.control()).arg(body);
        self.command::<u64>(publish).await.map(|_| ())
    }

    fn cmd(&self) -> Option<MultiplexedConnection> {
        lock(&self.cmd).clone()
    }

    /// Runs one command on the current link, within [`RedisConfig::command_timeout`].
    async fn command<T: redis::FromRedisValue>(&self, cmd: redis::Cmd) -> Result<T, RealtimeError> {
        let Some(mut con) = self.cmd().filter(|_| self.up.load(Relaxed)) else {
            return Err(unavailable("Redis is not reachable"));
        };
        match tokio::time::timeout(self.cfg.command_timeout, cmd.query_async::<T>(&mut con)).await {
            Ok(Ok(v)) => {
                self.replied();
                Ok(v)
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

    /// A command got no reply in time. One slow reply (a big script, a slow disk) is not a dead
    /// link: only [`SLOW_REPLIES`] in a row, with no reply in between, hand the link to the
    /// supervisor.
    fn slow_reply(&self) {
        if self.slow.fetch_add(1, Relaxed) + 1 >= SLOW_REPLIES {
            self.broken.store(true, Relaxed);
            self.wake.notify_one();
        }
    }

    /// A command got its reply: the link is alive.
    fn replied(&self) {
        self.slow.store(0, Relaxed);
    }

    /// A command failed: if the link is the problem, hand it to the supervisor.
    fn failed(&self, e: &RedisError) {
        if e.is_timeout() {
            self.slow_reply();
        } else if e.is_io_error() || e.is_connection_dropped() || e.is_unrecoverable_error() {
            self.broken.store(true, Relaxed);
            self.wake.notify_one();
        }
        if e.to_string().contains("GUTSEPOCH") {
            self.epoch_check.store(true, Relaxed);
            self.wake.notify_one();
        }
    }

    async fn publish_body(
        &self,
        ch: &Channel,
        kind: Option<EventKind>,
        item: Option<u64>,
        body: String,
        idempotency: Option<&str>,
    ) -> Result<Published, RealtimeError> {
        let result = self.try_publish(ch, kind, item, body, idempotency).await;
        match &result {
            Ok(_) => self.counters.published.fetch_add(1, Relaxed),
            Err(_) => self.counters.publish_errors.fetch_add(1, Relaxed),
        };
        result
    }

    async fn try_publish(
        &self,
        ch: &Channel,
        kind: Option<EventKind>,
        item: Option<u64>,
        body: String,
        idempotency: Option<&str>,
    ) -> Result<Published, RealtimeError> {
        let Some(mut con) = self.cmd().filter(|_| self.up.load(Relaxed)) else {
            return Err(unavailable("Redis is not reachable"));
        };
        let stream = ch.stream().to_string();
        let config = self.hub.config();
        let ttl_ms = u64::try_from(config.history_ttl.as_millis()).unwrap_or(u64::MAX);
        let mut call = self.publish.prepare_invoke();
        call.key(self.keys.epoch())
            .key(self.keys.seq(&stream))
            .key(self.keys.history(&stream))
            .key(self.keys.idempotency(&stream))
            .key(self.keys.idempotency_order(&stream))
            .arg(self.hub.epoch())
            .arg(config.history_size)
            .arg(ttl_ms)
            .arg(self.keys.topic(&stream))
            .arg(ch.to_string())
            .arg(kind.map_or("-", EventKind::wire_name))
            .arg(body)
            .arg(if self.sharded.load(Relaxed) { "1" } else { "0" })
            .arg(item.map_or_else(|| "-".to_owned(), |i| i.to_string()))
            .arg(idempotency.unwrap_or(""));
        let reply =
            tokio::time::timeout(self.cfg.command_timeout, call.invoke_async::<Vec<u64>>(&mut con))
                .await;
        match reply {
            Ok(Ok(v)) if v.len() == 3 => {
                self.replied();
                let delivered = usize::try_from(v[1]).unwrap_or(0);
                Ok(Published { seq: v[0], delivered, duplicate: v[2] == 1 })
            }
            Ok(Ok(v)) => Err(unavailable(format!("unexpected reply {v:?}"))),
            Ok(Err(e)) => {
                self.failed(&e);
                if e.to_string().contains("GUTSEPOCH") {
                    Err(unavailable("the cluster epoch changed"))
                } else {
                    Err(unavailable(e))
                }
            }
            Err(_) => {
                self.slow_reply();
                Err(unavailable("Redis did not answer in time"))
            }
        }
    }

    /// Reads a stream's head and the history after `since`.
    async fn read_stream(&self, stream: &str, since: Option<u64>) -> Result<Read, RedisError> {
        let Some(mut con) = self.cmd() else {
            return Err(RedisError::from(std::io::Error::other("not connected")));
        };
        let mut call = self.read.prepare_invoke();
        call.key(self.keys.epoch())
            .key(self.keys.seq(stream))
            .key(self.keys.history(stream))
            .arg(since.map(|s| s.to_string()).unwrap_or_default())
            .arg(self.hub.config().history_size.max(1));
        let v = match tokio::time::timeout(
            self.cfg.command_timeout,
            call.invoke_async::<Value>(&mut con),
        )
        .await
        {
            Ok(Ok(v)) => {
                self.replied();
                v
            }
            Ok(Err(e)) => {
                self.failed(&e);
                return Err(e);
            }
            Err(_) => {
                self.slow_reply();
                return Err(RedisError::from(std::io::Error::other("timed out")));
            }
        };
        parse_read(v).ok_or_else(|| RedisError::from(std::io::Error::other("malformed reply")))
    }

    /// The last `limit` events of `ch` still in the history window, with the stream's head.
    async fn history(&self, ch: &Channel, limit: usize) -> Result<HistoryPage, RealtimeError> {
        let stream = ch.stream().to_string();
        let Some(mut con) = self.cmd().filter(|_| self.up.load(Relaxed)) else {
            return Err(unavailable("Redis is not reachable"));
        };
        let mut call = self.history_script.prepare_invoke();
        call.key(self.keys.epoch())
            .key(self.keys.seq(&stream))
            .key(self.keys.history(&stream))
            .arg(self.hub.config().history_size.max(1));
        let run = call.invoke_async::<Value>(&mut con);
        let v = match tokio::time::timeout(self.cfg.command_timeout, run).await {
            Ok(Ok(v)) => {
                self.replied();
                v
            }
            Ok(Err(e)) => {
                self.failed(&e);
                return Err(unavailable(e));
            }
            Err(_) => {
                self.slow_reply();
                return Err(unavailable("Redis did not answer in time"));
            }
        };
        let read = parse_read(v).ok_or_else(|| unavailable("malformed history"))?;
        let epoch = self.hub.epoch();
        if read.epoch != epoch {
            self.epoch_check.store(true, Relaxed);
            self.wake.notify_one();
            return Err(unavailable("the cluster epoch changed"));
        }
        let ttl = self.hub.config().history_ttl.as_secs();
        // Newest first from Redis: keep the last `limit` the channel receives, oldest first.
        let mut events: Vec<Frame> = read
            .events
            .into_iter()
            .filter(|(e, t)| {
                t.saturating_add(ttl) >= read.now && ch.receives(&e.channel, e.kind, e.item)
            })
            .take(limit)
            .map(|(e, _)| e.frame)
            .collect();
        events.reverse();
        Ok(HistoryPage { channel: ch.clone(), epoch, seq: read.head, events })
    }

    /// Holds `stream`'s topic and waits (within the command timeout) until this node receives
    /// it; the hold, and whether it does.
    async fn receive(&self, name: &str, stream: &Channel) -> (TopicUse<'_>, bool) {
        let (hold, mut active) = self.acquire(name, stream);
        let ready = if self.up.load(Relaxed) {
            tokio::time::timeout(self.cfg.command_timeout, active.wait_for(|a| *a))
                .await
                .is_ok_and(|r| r.is_ok())
        } else {
            *active.borrow()
        };
        (hold, ready)
    }

    /// The history for a subscribe; `None` when Redis cannot tell (unreachable, epoch moved).
    async fn recovery(&self, stream: &str, since: Option<&Since>) -> Option<Recovery> {
        let epoch = self.hub.epoch();
        let since_seq = since.filter(|s| s.epoch == epoch).map(|s| s.seq);
        let read = self.read_stream(stream, since_seq).await.ok()?;
        if read.epoch != epoch {
            self.epoch_check.store(true, Relaxed);
            self.wake.notify_one();
            return None;
        }
        let ttl = self.hub.config().history_ttl.as_secs();
        let head = read.head;
        let complete = match since_seq {
            None => true,
            Some(s) if s >= head => s == head,
            Some(s) => {
                let n = read.events.len() as u64;
                n == head - s
                    && read.events.iter().zip(s + 1..).all(|((e, _), want)| e.seq == want)
                    && read.events.first().is_some_and(|(_, t)| t.saturating_add(ttl) >= read.now)
            }
        };
        let events = read.events.into_iter().map(|(e, _)| e).collect();
        Some(Recovery { head, complete, events, presence: None })
    }

    /// Holds `stream`'s topic for a subscribe in progress; returns the guard and the topic's
    /// "subscribed on Redis" flag.
    fn acquire(&self, name: &str, stream: &Channel) -> (TopicUse<'_>, watch::Receiver<bool>) {
        let mut topics = lock(&self.topics);
        let t = topics.entry(name.to_owned()).or_insert_with(|| {
            // New: the supervisor subscribes it (after any unsubscribe it already sent).
            let _ = self.subscribe_tx.send(name.to_owned());
            Topic {
                channel: stream.clone(),
                users: 0,
                active: watch::Sender::new(false),
                idle_since: None,
            }
        });
        t.users += 1;
        t.idle_since = None;
        let rx = t.active.subscribe();
        drop(topics);
        (TopicUse { inner: self, stream: name.to_owned() }, rx)
    }

    /// Removes the topics that have had no user and no local subscriber for the grace period;
    /// returns their names (to unsubscribe).
    fn sweep(&self) -> Vec<String> {
        let now = Instant::now();
        let grace = self.cfg.unsubscribe_grace;
        let mut gone = Vec::new();
        lock(&self.topics).retain(|name, t| {
            if t.users > 0 || self.hub.stream_subscribers(&t.channel) > 0 {
                t.idle_since = None;
                return true;
            }
            let idle = *t.idle_since.get_or_insert(now);
            if now.duration_since(idle) >= grace {
                gone.push((name.clone(), t.channel.clone()));
                false
            } else {
                true
            }
        });
        gone.into_iter()
            .map(|(name, stream)| {
                self.drop_views(&stream);
                name
            })
            .collect()
    }

    /// Reads the cluster epoch (creating it if missing) and adopts it.
    async fn sync_epoch(
        &self,
        con: &mut MultiplexedConnection,
        expected: &str,
    ) -> Result<(), RedisError> {
        // A node that never saw this Redis offers its own epoch; one that did and finds none
        // knows the history was lost and offers a fresh one.
        let candidate = if self.seen_redis.load(Relaxed) { new_epoch() } else { self.hub.epoch() };
        let mut call = self.epoch_script.prepare_invoke();
        call.key(self.keys.epoch()).arg(expected).arg(candidate);
        let epoch: String = tokio::time::timeout(self.cfg.command_timeout, call.invoke_async(con))
            .await
            .map_err(|_| RedisError::from(std::io::Error::other("timed out")))??;
        let first_contact = !self.seen_redis.swap(true, Relaxed);
        if self.hub.change_epoch(&epoch) {
            if first_contact {
                tracing::info!(%epoch, "redis broker: joined the cluster epoch");
            } else {
                self.counters.epoch_changes.fetch_add(1, Relaxed);
                tracing::warn!(%epoch, "redis broker: new cluster epoch (Redis lost history); clients reconnect and report a gap");
            }
        }
        Ok(())
    }

    /// After a (re)connect: delivers what a subscribed stream missed while the link was down,
    /// and changes the epoch if Redis went back in time.
    async fn catch_up(
        &self,
        con: &mut MultiplexedConnection,
        name: &str,
        ch: &Channel,
    ) -> Result<(), RedisError> {
        let Some(local) = self.hub.stream_head(ch) else { return Ok(()) };
        let read = self.read_stream(name, Some(local)).await?;
        if read.epoch != self.hub.epoch() {
            self.epoch_check.store(true, Relaxed);
            return Ok(());
        }
        if read.head < local {
            tracing::warn!(
                stream = name,
                local,
                redis = read.head,
                "redis broker: Redis history went back in time"
            );
            let current = self.hub.epoch();
            self.seen_redis.store(true, Relaxed);
            return self.sync_epoch(con, &current).await;
        }
        for (ev, _) in read.events {
            let _ = self.hub.deliver(ev);
        }
        Ok(())
    }

    fn on_push(&self, info: PushInfo) {
        match info.kind {
            PushKind::Disconnection => {
                self.broken.store(true, Relaxed);
                self.wake.notify_one();
            }
            PushKind::Message
                if info.data.first().and_then(bulk) == Some(self.keys.control().as_bytes()) =>
            {
                let Some(Value::BulkString(payload)) = info.data.into_iter().nth(1) else {
                    return;
                };
                match serde_json::from_slice::<Control>(&payload) {
                    Ok(Control::Revoke { user, channel }) => match Channel::parse(&channel) {
                        Ok(ch) => {
                            self.hub.revoke_local(&user, &ch);
                        }
                        Err(e) => tracing::warn!("redis broker: bad revoke: {e}"),
                    },
                    Ok(Control::Disconnect { user }) => {
                        self.hub.disconnect_user_local(&user);
                    }
                    Err(_) => tracing::warn!("redis broker: malformed control message"),
                }
            }
            PushKind::Message | PushKind::SMessage => {
                let Some(payload) = info.data.into_iter().nth(1) else { return };
                let Value::BulkString(payload) = payload else { return };
                if payload.starts_with(b"P\n") {
                    match presence::parse_change(&payload) {
                        Some(change) => self.on_presence_change(change),
                        None => tracing::warn!("redis broker: malformed presence message"),
                    }
                    return;
                }
                if payload.starts_with(b"S\n") {
                    match parse_signal(&payload) {
                        Some((node, _, _)) if node == self.node => {}
                        Some((_, channel, frame)) => {
                            self.hub.signal_local(&channel, &frame, None);
                        }
                        None => tracing::warn!("redis broker: malformed signal message"),
                    }
                    return;
                }
                match parse_message(payload) {
                    Some(ev) => {
                        self.counters.received.fetch_add(1, Relaxed);
                        match self.hub.deliver(ev) {
                            Ok(d) if d.rewound => {
                                tracing::warn!(
                                    "redis broker: a stream's seq went back (its keys were lost); \
                                     its subscribers reconnect and report a gap"
                                );
                                self.counters.rewinds.fetch_add(1, Relaxed);
                            }
                            Ok(_) => {}
                            Err(e) => tracing::warn!("redis broker: cannot deliver: {e}"),
                        }
                    }
                    None => tracing::warn!("redis broker: malformed pub/sub message"),
                }
            }
            _ => {}
        }
    }

    async fn topic_command(
        &self,
        sub: &mut MultiplexedConnection,
        name: &str,
        on: bool,
    ) -> Result<(), RedisError> {
        let topic = self.keys.topic(name);
        let sharded = self.sharded.load(Relaxed);
        let fut = async {
            match (sharded, on) {
                (true, true) => redis::cmd("SSUBSCRIBE").arg(&topic).exec_async(sub).await,
                (true, false) => redis::cmd("SUNSUBSCRIBE").arg(&topic).exec_async(sub).await,
                (false, true) => sub.subscribe(&topic).await,
                (false, false) => sub.unsubscribe(&topic).await,
            }
        };
        tokio::time::timeout(self.cfg.command_timeout, fut)
            .await
            .map_err(|_| RedisError::from(std::io::Error::other("timed out")))??;
        if on {
            self.counters.topic_subscribes.fetch_add(1, Relaxed);
        } else {
            self.counters.topic_unsubscribes.fetch_add(1, Relaxed);
        }
        Ok(())
    }

    /// Renews the expiry of the seq key of every stream this node is subscribed to: a stream
    /// keeps its numbering while anyone watches it, and loses it `ttl` after the last publish
    /// once nobody does.
    async fn keep_seq_keys(&self, ttl: Duration) {
        let names: Vec<String> = lock(&self.topics).keys().cloned().collect();
        let Some(mut con) = self.cmd() else { return };
        let ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
        for chunk in names.chunks(500) {
            let mut pipe = redis::pipe();
            for name in chunk {
                pipe.cmd("PEXPIRE").arg(self.keys.seq(name)).arg(ms).ignore();
            }
            let run = pipe.query_async::<()>(&mut con);
            if !matches!(tokio::time::timeout(self.cfg.command_timeout, run).await, Ok(Ok(()))) {
                return;
            }
        }
    }

    fn set_active(&self, name: &str, active: bool) {
        if let Some(t) = lock(&self.topics).get(name) {
            t.active.send_replace(active);
        }
    }

    /// Opens both connections, adopts the epoch, resubscribes every topic and catches up.
    async fn establish(self: &Arc<Self>) -> Result<MultiplexedConnection, RedisError> {
        let timeout = Some(self.cfg.command_timeout);
        let base = AsyncConnectionConfig::new()
            .set_connection_timeout(timeout)
            .set_response_timeout(timeout);
        let mut cmd = self.client.get_multiplexed_async_connection_with_config(&base).await?;
        let sharded = match self.cfg.sharded {
            Some(s) => s,
            None => {
                let info: String = redis::cmd("INFO").arg("server").query_async(&mut cmd).await?;
                let major = info
                    .lines()
                    .find_map(|l| l.strip_prefix("redis_version:"))
                    .and_then(|v| v.split('.').next()?.trim().parse::<u32>().ok())
                    .unwrap_or(0);
                major >= 7
            }
        };
        self.sharded.store(sharded, Relaxed);
        // An evicting policy can drop a stream's seq key or history: such a loss is detected
        // (a rewind, a history that no longer holds what it held) and reported as a gap, but
        // nothing lost is ever recovered. Managed Redis may refuse CONFIG: then nothing is known.
        let policy: Option<HashMap<String, String>> = redis::cmd("CONFIG")
            .arg("GET")
            .arg("maxmemory-policy")
            .query_async(&mut cmd)
            .await
            .ok();
        if let Some(p) = policy.as_ref().and_then(|v| v.get("maxmemory-policy")) {
            let evicts = p != "noeviction";
            self.may_evict.store(evicts, Relaxed);
            if evicts {
                tracing::warn!(
                    policy = %p,
                    "redis broker: Redis maxmemory-policy may evict the hub's keys; use noeviction"
                );
            }
        }
        self.sync_epoch(&mut cmd, "").await?;
        let weak = Arc::downgrade(self);
        let sub_cfg = base.set_push_sender(move |info: PushInfo| -> Result<(), ()> {
            if let Some(inner) = weak.upgrade() {
                inner.on_push(info);
            }
            Ok(())
        });
        let mut sub = self.client.get_multiplexed_async_connection_with_config(&sub_cfg).await?;
        *lock(&self.cmd) = Some(cmd.clone());
        self.broken.store(false, Relaxed);
        let names: Vec<(String, Channel)> =
            lock(&self.topics).iter().map(|(n, t)| (n.clone(), t.channel.clone())).collect();
        tokio::time::timeout(self.cfg.command_timeout, sub.subscribe(self.keys.control()))
            .await
            .map_err(|_| RedisError::from(std::io::Error::other("timed out")))??;
        for (name, _) in &names {
            self.topic_command(&mut sub, name, true).await?;
            self.set_active(name, true);
        }
        self.up.store(true, Relaxed);
        self.counters.connects.fetch_add(1, Relaxed);
        for (name, ch) in &names {
            self.catch_up(&mut cmd, name, ch).await?;
        }
        // Presence: alive again, this node's counts published again, the views reloaded.
        let up = async {
            self.heartbeat().await?;
            self.registered.store(true, Relaxed);
            self.reassert_presence().await?;
            self.reload_views().await;
            Ok::<(), RealtimeError>(())
        };
        if let Err(e) = up.await {
            return Err(RedisError::from(std::io::Error::other(e.to_string())));
        }
        Ok(sub)
    }

    fn set_down(&self) {
        self.up.store(false, Relaxed);
        *lock(&self.cmd) = None;
        for t in lock(&self.topics).values() {
            t.active.send_replace(false);
        }
    }

    /// Runs a live link until it fails (`false`) or the broker stops (`true`).
    async fn run(
        &self,
        sub: &mut MultiplexedConnection,
        subscribe_rx: &mut mpsc::UnboundedReceiver<String>,
        stop: &mut watch::Receiver<bool>,
    ) -> bool {
        let period = (self.cfg.unsubscribe_grace / 4)
            .clamp(Duration::from_millis(20), Duration::from_secs(1))
            .min(self.cfg.health_interval);
        let mut tick = tokio::time::interval(period);
        let mut last_ping = Instant::now();
        // The seq keys of the streams this node serves are kept from expiring while it does.
        let ttl = self.hub.config().history_ttl;
        let keep_every = (ttl / 4).max(Duration::from_secs(1));
        let mut last_keep = Instant::now();
        let mut last_beat = Instant::now();
        loop {
            if self.broken.load(Relaxed) {
                return false;
            }
            if self.epoch_check.swap(false, Relaxed) {
                let Some(mut con) = self.cmd() else { return false };
                if self.sync_epoch(&mut con, "").await.is_err() {
                    return false;
                }
            }
            enum Step {
                Subscribe(String),
                Tick,
                Woken,
            }
            let step = tokio::select! {
                _ = stop.wait_for(|s| *s) => return true,
                name = subscribe_rx.recv() => match name {
                    Some(name) => Step::Subscribe(name),
                    None => return true,
                },
                _ = tick.tick() => Step::Tick,
                () = self.wake.notified() => Step::Woken,
            };
            match step {
                Step::Subscribe(name) => {
                    // Skip a topic that was released and swept before its turn came.
                    if !lock(&self.topics).contains_key(&name) {
                        continue;
                    }
                    if let Err(e) = self.topic_command(sub, &name, true).await {
                        tracing::warn!(topic = %name, "redis broker: subscribe failed: {e}");
                        return false;
                    }
                    self.set_active(&name, true);
                }
                Step::Tick => {
                    for name in self.sweep() {
                        if let Err(e) = self.topic_command(sub, &name, false).await {
                            tracing::warn!(topic = %name, "redis broker: unsubscribe failed: {e}");
                            return false;
                        }
                    }
                    if !ttl.is_zero() && last_keep.elapsed() >= keep_every {
                        last_keep = Instant::now();
                        self.keep_seq_keys(ttl).await;
                    }
                    if last_beat.elapsed() >= self.cfg.presence_heartbeat {
                        last_beat = Instant::now();
                        if let Err(e) = self.heartbeat().await {
                            tracing::warn!("redis broker: heartbeat failed: {e}");
                        }
                        if let Err(e) = self.reap().await {
                            tracing::warn!("redis broker: reaping stopped nodes failed: {e}");
                        }
                    }
                    if last_ping.elapsed() >= self.cfg.health_interval {
                        last_ping = Instant::now();
                        let Some(mut con) = self.cmd() else { return false };
                        let ping_cmd = redis::cmd("PING");
                        let ping = ping_cmd.query_async::<String>(&mut con);
                        match tokio::time::timeout(self.cfg.command_timeout, ping).await {
                            Ok(Ok(_)) => self.replied(),
                            Ok(Err(e)) if e.is_timeout() => {
                                tracing::warn!("redis broker: Redis is slow to answer PING");
                                self.slow_reply();
                            }
                            Ok(Err(e)) => {
                                tracing::warn!("redis broker: PING failed: {e}");
                                return false;
                            }
                            Err(_) => {
                                tracing::warn!("redis broker: Redis is slow to answer PING");
                                self.slow_reply();
                            }
                        }
                    }
                }
                Step::Woken => self.flush_presence().await,
            }
        }
    }
}

/// The background task: connect, run, reconnect with jittered exponential backoff.
async fn supervise(
    weak: Weak<Inner>,
    mut subscribe_rx: mpsc::UnboundedReceiver<String>,
    mut stop: watch::Receiver<bool>,
    up_tx: watch::Sender<bool>,
) {
    let mut delay = Duration::ZERO;
    let mut attempt = 0;
    let mut rng = Rng::from_os();
    let mut down_logged = false;
    loop {
        if !delay.is_zero() {
            tokio::select! {
                _ = stop.wait_for(|s| *s) => return,
                () = tokio::time::sleep(delay) => {}
            }
        }
        let Some(inner) = weak.upgrade() else { return };
        if *stop.borrow() {
            return;
        }
        // Every topic is resubscribed by `establish`: queued requests are covered.
        while subscribe_rx.try_recv().is_ok() {}
        match inner.establish().await {
            Ok(mut sub) => {
                tracing::info!(epoch = %inner.hub.epoch(), sharded = inner.sharded.load(Relaxed), "redis broker: connected");
                up_tx.send_replace(true);
                down_logged = false;
                attempt = 0;
                let stopped = inner.run(&mut sub, &mut subscribe_rx, &mut stop).await;
                inner.set_down();
                up_tx.send_replace(false);
                if stopped {
                    return;
                }
                tracing::warn!(
                    "redis broker: link lost; local connections are still served, reconnecting"
                );
            }
            Err(e) => {
                inner.set_down();
                if !down_logged {
                    tracing::warn!("redis broker: cannot reach Redis ({e}); retrying with backoff");
                    down_logged = true;
                }
            }
        }
        let (min, max) = (inner.cfg.reconnect_min, inner.cfg.reconnect_max);
        drop(inner);
        // The session's full-jitter backoff, floored at `min`, so nodes do not retry in step.
        delay = backoff_delay(min, max, attempt, &mut rng).max(min);
        attempt = attempt.saturating_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pubsub_message_splits_into_frame_seq_channel_kind_and_item() {
        let frame = r#"{"type":"event","channel":"repo:o/n","data":{"t":"a\nb"},"seq":7}"#;
        let msg = format!("{frame}\n7\nrepo:o/n/prs\npr_opened\n12");
        let ev = parse_message(msg.into_bytes()).unwrap();
        assert_eq!(ev.seq, 7);
        assert_eq!(ev.channel.to_string(), "repo:o/n/prs");
        assert_eq!(ev.kind, Some(EventKind::PrOpened));
        assert_eq!(ev.item, Some(12));
        assert_eq!(ev.frame.as_str(), frame);
        let n = parse_message(b"{}\n3\nuser:u\n-\n-".to_vec()).unwrap();
        assert_eq!((n.kind, n.item, n.frame.as_str()), (None, None, "{}"));
        assert!(parse_message(b"{}\nx\nuser:u\n-\n-".to_vec()).is_none());
        assert!(parse_message(b"{}\n3\nnot a channel\n-\n-".to_vec()).is_none());
        assert!(parse_message(b"{}\n3\nuser:u\n-\nx".to_vec()).is_none());
    }

    #[test]
    fn signals_and_presence_changes_parse() {
        let (node, ch, frame) = parse_signal(b"S\nn1\nrepo:o/n/prs/1\n{\"a\":1}").unwrap();
        assert_eq!(
            (node, ch.to_string().as_str(), frame.as_str()),
            ("n1", "repo:o/n/prs/1", "{\"a\":1}")
        );
        assert!(parse_signal(b"S\nn1\nnot a channel\n{}").is_none());
        let c = presence::parse_change(b"P\nrepo:o/n/prs/1\n17\nn2\nalice\n2").unwrap();
        assert_eq!(
            (c.channel.as_str(), c.version, c.node.as_str(), c.user.as_str(), c.count),
            ("repo:o/n/prs/1", 17, "n2", "alice", 2)
        );
        assert!(presence::parse_change(b"P\nrepo:o/n\nx\nn2\nalice\n2").is_none());
    }

    #[test]
    fn the_body_plus_seq_is_the_frame_the_in_memory_hub_sends() {
        let hub = EventHub::with_config_and_epoch(Default::default(), "e".into());
        let (c, mut rx) = hub.connect().unwrap();
        hub.subscribe(&c, "repo:o/n", None, None).unwrap();
        let _ = rx.try_recv();
        let ev = RealtimeEvent::new("repo:o/n", EventKind::Push, serde_json::json!({"x": 1}));
        let body = body_of(&ServerMessage::Event(ev.clone()));
        let p = hub.publish_event(ev).unwrap();
        assert_eq!(format!("{body}{}}}", p.seq), rx.try_recv().unwrap().as_str());
    }

    #[test]
    fn urls_get_resp3() {
        assert_eq!(resp3_url("redis://h:1"), "redis://h:1?protocol=resp3");
        assert_eq!(resp3_url("redis://h:1/?db=2"), "redis://h:1/?db=2&protocol=resp3");
        assert_eq!(resp3_url("redis://h/?protocol=2"), "redis://h/?protocol=2");
        assert_eq!(new_epoch().len(), 16);
        assert_ne!(new_epoch(), new_epoch());
    }
}
