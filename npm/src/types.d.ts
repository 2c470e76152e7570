// Generated from the Rust types by sdk-wasm/tests/ts_types.rs (ts-rs). Do not edit.
// Regenerate: UPDATE_TYPES=1 cargo test -p guts-realtime-wasm --features ts --test ts_types

/**
 * Every frame a server sends (internally tagged by `"type"`, snake_case). Events are a
 * variant too, so one decode call reads any server frame.
 */
export type ServerMessage = { "type": "welcome", 
/**
 * Changes whenever the hub loses history (a restart); `since` is only honoured
 * within one epoch.
 */
epoch: string, 
/**
 * The hub's id for this connection.
 */
client_id: string, } | { "type": "subscribed", 
/**
 * The canonical channel.
 */
channel: string, 
/**
 * The stream head when the subscription started.
 */
seq?: number, 
/**
 * Whether everything after `since` is being replayed (only with `since`).
 */
recovered?: boolean, } | { "type": "unsubscribed", 
/**
 * The canonical channel.
 */
channel: string, } | { "type": "unsubscribed", 
/**
 * The canonical channel.
 */
channel: string, 
/**
 * Why (`"revoked"`).
 */
reason: string, } | { "type": "pong" } | { "type": "error", 
/**
 * Human-readable.
 */
message: string, 
/**
 * Machine-readable: absent from seed-era servers, and `None` for a code this version
 * does not know (so a newer server's new code never makes the frame undecodable).
 */
code?: ErrorCode, } | { "type": "authenticated", 
/**
 * The authenticated identity.
 */
user: string, 
/**
 * Whole seconds until the token expires (absent for a token without `exp`): send a
 * new `auth` before then, or the connection is closed with 4002.
 */
expires_in?: number, } | { "type": "published", 
/**
 * The canonical channel.
 */
channel: string, 
/**
 * The seq the event got.
 */
seq: number, 
/**
 * The publish repeated an idempotency key: `seq` is the first one's, and nothing
 * was published (`"duplicate":true`, absent otherwise).
 */
duplicate?: boolean, } | { "type": "event" } & RealtimeEvent | { "type": "notification", 
/**
 * `user:<user_id>`.
 */
channel: string, 
/**
 * The notification.
 */
notification: Notification, 
/**
 * Position in the user's stream.
 */
seq?: number, } | { "type": "presence", 
/**
 * The canonical channel.
 */
channel: string, 
/**
 * The members, by user name.
 */
members: Array<PresenceMember>, 
/**
 * Whether members were left out.
 */
truncated?: boolean, } | { "type": "join", 
/**
 * The canonical channel.
 */
channel: string, 
/**
 * Who joined.
 */
user: string, } | { "type": "leave", 
/**
 * The canonical channel.
 */
channel: string, 
/**
 * Who left.
 */
user: string, } | { "type": "signal", 
/**
 * The item channel.
 */
channel: string, 
/**
 * The signal's name.
 */
event: string, 
/**
 * Its payload.
 */
data: JsonValue, 
/**
 * The sender, as authenticated by the hub.
 */
user: string, } | { "type": "history", 
/**
 * The canonical channel.
 */
channel: string, 
/**
 * The hub's epoch.
 */
epoch: string, 
/**
 * The stream's last seq when the history was read.
 */
seq: number, 
/**
 * The event (or notification) frames.
 */
events: Array<ServerMessage>, };

/**
 * A server frame: a message plus the `id` of the command it answers.
 */
export type ServerFrame = { 
/**
 * The echoed command id.
 */
id?: RequestId, } & ({ "type": "welcome", 
/**
 * Changes whenever the hub loses history (a restart); `since` is only honoured
 * within one epoch.
 */
epoch: string, 
/**
 * The hub's id for this connection.
 */
client_id: string, } | { "type": "subscribed", 
/**
 * The canonical channel.
 */
channel: string, 
/**
 * The stream head when the subscription started.
 */
seq?: number, 
/**
 * Whether everything after `since` is being replayed (only with `since`).
 */
recovered?: boolean, } | { "type": "unsubscribed", 
/**
 * The canonical channel.
 */
channel: string, } | { "type": "unsubscribed", 
/**
 * The canonical channel.
 */
channel: string, 
/**
 * Why (`"revoked"`).
 */
reason: string, } | { "type": "pong" } | { "type": "error", 
/**
 * Human-readable.
 */
message: string, 
/**
 * Machine-readable: absent from seed-era servers, and `None` for a code this version
 * does not know (so a newer server's new code never makes the frame undecodable).
 */
code?: ErrorCode, } | { "type": "authenticated", 
/**
 * The authenticated identity.
 */
user: string, 
/**
 * Whole seconds until the token expires (absent for a token without `exp`): send a
 * new `auth` before then, or the connection is closed with 4002.
 */
expires_in?: number, } | { "type": "published", 
/**
 * The canonical channel.
 */
channel: string, 
/**
 * The seq the event got.
 */
seq: number, 
/**
 * The publish repeated an idempotency key: `seq` is the first one's, and nothing
 * was published (`"duplicate":true`, absent otherwise).
 */
duplicate?: boolean, } | { "type": "event" } & RealtimeEvent | { "type": "notification", 
/**
 * `user:<user_id>`.
 */
channel: string, 
/**
 * The notification.
 */
notification: Notification, 
/**
 * Position in the user's stream.
 */
seq?: number, } | { "type": "presence", 
/**
 * The canonical channel.
 */
channel: string, 
/**
 * The members, by user name.
 */
members: Array<PresenceMember>, 
/**
 * Whether members were left out.
 */
truncated?: boolean, } | { "type": "join", 
/**
 * The canonical channel.
 */
channel: string, 
/**
 * Who joined.
 */
user: string, } | { "type": "leave", 
/**
 * The canonical channel.
 */
channel: string, 
/**
 * Who left.
 */
user: string, } | { "type": "signal", 
/**
 * The item channel.
 */
channel: string, 
/**
 * The signal's name.
 */
event: string, 
/**
 * Its payload.
 */
data: JsonValue, 
/**
 * The sender, as authenticated by the hub.
 */
user: string, } | { "type": "history", 
/**
 * The canonical channel.
 */
channel: string, 
/**
 * The hub's epoch.
 */
epoch: string, 
/**
 * The stream's last seq when the history was read.
 */
seq: number, 
/**
 * The event (or notification) frames.
 */
events: Array<ServerMessage>, });

/**
 * An event frame: `{"type":"event","channel","event","data","timestamp","event_id","seq"}`.
 *
 * `seq` is set by the hub when the event is published (strictly increasing within the
 * channel's stream) and omitted while `None`.
 */
export type RealtimeEvent = { 
/**
 * Always `"event"` (`"type"` on the wire).
 */
type: "event", 
/**
 * The channel the event was emitted on.
 */
channel: string, 
/**
 * The kind of event.
 */
event: EventKind, 
/**
 * Free-form payload (often one of the `*EventData` structs).
 */
data: JsonValue, 
/**
 * Unix time in seconds.
 */
timestamp: number, 
/**
 * A unique id (UUID v4 when made by [`RealtimeEvent::new`]).
 */
event_id: string, 
/**
 * Position in the channel's stream, stamped by the hub.
 */
seq?: number, };

/**
 * The kind of a repository event. Serialized snake_case (`"pr_opened"`).
 */
export type EventKind = "push" | "branch_created" | "branch_deleted" | "tag_created" | "tag_deleted" | "pr_opened" | "pr_closed" | "pr_merged" | "pr_updated" | "pr_reopened" | "pr_review" | "pr_comment" | "issue_opened" | "issue_closed" | "issue_reopened" | "issue_updated" | "issue_comment" | "label_added" | "label_removed" | "repo_created" | "repo_updated" | "collaborator_added" | "collaborator_removed";

/**
 * A notification for one user.
 */
export type Notification = { 
/**
 * Unique id.
 */
id: string, 
/**
 * The user it is for; delivered on `user:<user_id>`.
 */
user_id: string, 
/**
 * Its kind.
 */
notification_type: NotificationType, 
/**
 * Title.
 */
title: string, 
/**
 * Body.
 */
body: string, 
/**
 * Link to the thing concerned.
 */
url: string | null, 
/**
 * Whether the user read it.
 */
read: boolean, 
/**
 * Unix time in seconds.
 */
created_at: number, 
/**
 * Context.
 */
metadata: NotificationMetadata, };

/**
 * Kind of a user notification (snake_case on the wire).
 */
export type NotificationType = "mention" | "assigned" | "review_requested" | "pr_merged" | "pr_closed" | "new_comment" | "review_submitted" | "issue_closed" | "push" | "team_added" | "collaborator_added" | "workflow_completed";

/**
 * Optional context of a notification; absent fields are omitted on the wire.
 */
export type NotificationMetadata = { 
/**
 * `owner/name` of the repository concerned.
 */
repo_key?: string, 
/**
 * PR number.
 */
pr_number?: number, 
/**
 * Issue number.
 */
issue_number?: number, 
/**
 * Who caused it.
 */
actor?: string, };

/**
 * Machine-readable code of an `error` frame (`"code"` on the wire, snake_case).
 */
export type ErrorCode = "invalid_message" | "invalid_channel" | "subscription_limit" | "forbidden" | "unauthenticated" | "rate_limited" | "unavailable" | "token_expired";

export type JsonValue = number | string | boolean | Array<JsonValue> | { [key in string]: JsonValue } | null;

/**
 * Payload of a push event.
 */
export type PushEventData = { 
/**
 * The pushed ref (`"ref"` on the wire).
 */
ref: string, 
/**
 * Old commit.
 */
before: string, 
/**
 * New commit.
 */
after: string, 
/**
 * Who pushed.
 */
pusher: string, 
/**
 * Number of commits pushed.
 */
commit_count: number, };

/**
 * Payload of a pull-request event.
 */
export type PullRequestEventData = { 
/**
 * PR number.
 */
number: number, 
/**
 * Title.
 */
title: string, 
/**
 * Author.
 */
author: string, 
/**
 * Source branch.
 */
source_branch: string, 
/**
 * Target branch.
 */
target_branch: string, 
/**
 * `open`, `closed` or `merged`.
 */
state: string, };

/**
 * Payload of an issue event.
 */
export type IssueEventData = { 
/**
 * Issue number.
 */
number: number, 
/**
 * Title.
 */
title: string, 
/**
 * Author.
 */
author: string, 
/**
 * `open` or `closed`.
 */
state: string, };

/**
 * Payload of a comment event.
 */
export type CommentEventData = { 
/**
 * Comment id.
 */
id: number, 
/**
 * Number of the PR or issue commented on.
 */
parent_number: number, 
/**
 * Author.
 */
author: string, 
/**
 * The first characters of the body.
 */
body_preview: string, };

/**
 * Payload of a review event.
 */
export type ReviewEventData = { 
/**
 * Review id.
 */
id: number, 
/**
 * PR number.
 */
pr_number: number, 
/**
 * Reviewer.
 */
reviewer: string, 
/**
 * `approved`, `changes_requested` or `commented`.
 */
state: string, };

/**
 * A client frame: a command plus the optional envelope fields `since`, `presence` and `id`.
 */
export type ClientFrame = { 
/**
 * Recover from this position (subscribe only; ignored on other commands).
 */
since?: Since, 
/**
 * Join the channel's presence (subscribe only; ignored on other commands): the hub sends
 * the member list after `subscribed`, then `join` and `leave` as it changes.
 */
presence?: boolean, 
/**
 * Echoed by the reply.
 */
id?: RequestId, } & ({ "type": "subscribe", 
/**
 * The channel.
 */
channel: string, } | { "type": "unsubscribe", 
/**
 * The channel.
 */
channel: string, } | { "type": "ping" } | { "type": "auth", 
/**
 * A JWT, or the hub's publish key.
 */
token: string, } | { "type": "publish", 
/**
 * The channel.
 */
channel: string, 
/**
 * The kind.
 */
event: EventKind, 
/**
 * The payload (`null` when absent).
 */
data: JsonValue, 
/**
 * Makes a retried publish harmless.
 */
idempotency_key?: string, } | { "type": "presence", 
/**
 * The channel.
 */
channel: string, } | { "type": "history", 
/**
 * The channel.
 */
channel: string, 
/**
 * How many events, at most.
 */
limit?: number, } | { "type": "signal", 
/**
 * The item channel.
 */
channel: string, 
/**
 * The signal's name (`typing`, `cursor.moved`, …).
 */
event: string, 
/**
 * The payload (`null` when absent).
 */
data: JsonValue, });

/**
 * A command from a client (internally tagged by `"type"`, snake_case).
 */
export type ClientCommand = { "type": "subscribe", 
/**
 * The channel.
 */
channel: string, } | { "type": "unsubscribe", 
/**
 * The channel.
 */
channel: string, } | { "type": "ping" } | { "type": "auth", 
/**
 * A JWT, or the hub's publish key.
 */
token: string, } | { "type": "publish", 
/**
 * The channel.
 */
channel: string, 
/**
 * The kind.
 */
event: EventKind, 
/**
 * The payload (`null` when absent).
 */
data: JsonValue, 
/**
 * Makes a retried publish harmless.
 */
idempotency_key?: string, } | { "type": "presence", 
/**
 * The channel.
 */
channel: string, } | { "type": "history", 
/**
 * The channel.
 */
channel: string, 
/**
 * How many events, at most.
 */
limit?: number, } | { "type": "signal", 
/**
 * The item channel.
 */
channel: string, 
/**
 * The signal's name (`typing`, `cursor.moved`, …).
 */
event: string, 
/**
 * The payload (`null` when absent).
 */
data: JsonValue, };

/**
 * A position in a stream: the last `seq` seen under hub `epoch`. Sent as `since` to recover.
 */
export type Since = { 
/**
 * The last seq the client received.
 */
seq: number, 
/**
 * The hub epoch that seq belongs to.
 */
epoch: string, };

/**
 * The `id` of a command, echoed by its reply: a string (at most [`RequestId::MAX_LEN`] bytes) or
 * a non-negative integer.
 */
export type RequestId = number | string;

/**
 * Options of `new RealtimeClient(url, options)`. Every field is optional.
 */
export type ClientOptions = { 
/**
 * Called before every connect (and reconnect) for a fresh token, which is sent as the first
 * frame. Return (or resolve to) a string; `null`/`undefined`/`""` connects anonymously. Throw
 * or reject to retry with backoff — or, to stop for good, reject with an error whose `name` is
 * `"UnauthorizedError"` (or that has `unauthorized: true`): the client goes to `closed`.
 * Without it the client connects anonymously.
 */
token?: () => Promise<string | null | undefined> | string | null | undefined, 
/**
 * Reconnect backoff (full jitter): `random(0, min(max, base · 2^attempt))`.
 */
backoff?: Backoff, 
/**
 * Client heartbeat: ping after `interval` ms without any frame; declare the link dead when
 * nothing arrives `timeout` ms after the ping.
 */
heartbeat?: Heartbeat, 
/**
 * How long fetching a token, opening the socket and the handshake may take, in ms
 * (default 10000).
 */
connectTimeout?: number, 
/**
 * The `WebSocket` constructor to use instead of the global one (e.g. the `ws` package's in
 * Node 20). With neither, the client closes at once with a reason that names this option.
 */
WebSocket?: new (url: string) => unknown, 
/**
 * Share one WebSocket among every tab of the origin that asks for it, through a
 * `SharedWorker` (each tab keeps its own subscriptions, callbacks, gaps and presence; the
 * connection outlives the tab that opened it). Where there is no `SharedWorker` the client
 * opens its own socket. The tabs share the identity of the token the connection was opened
 * with.
 */
shared?: boolean, };

/**
 * Backoff bounds, in milliseconds.
 */
export type Backoff = { 
/**
 * First-retry ceiling (default 500).
 */
base?: number, 
/**
 * Largest delay (default 20000).
 */
max?: number, };

/**
 * Heartbeat timings, in milliseconds.
 */
export type Heartbeat = { 
/**
 * Idle time before a ping (default 20000).
 */
interval?: number, 
/**
 * Wait for any frame after a ping before reconnecting (default 10000).
 */
timeout?: number, };

/**
 * What `onState` listeners receive.
 */
export type StateChange = { 
/**
 * The new state.
 */
state: StateName, 
/**
 * Why (human-readable).
 */
reason: string, 
/**
 * The WebSocket close code that caused it, if any (e.g. 4001 for a rejected token).
 */
code?: number, 
/**
 * `reconnecting` only: milliseconds until the next attempt.
 */
retryIn?: number, 
/**
 * `connecting` and `reconnecting`: failed attempts since the last stable connection.
 */
attempt?: number, };

/**
 * A connection state name.
 */
export type StateName = "idle" | "connecting" | "authenticating" | "connected" | "reconnecting" | "closed";

/**
 * The optional third argument of `subscribe(channel, onEvent, handlers)`.
 */
export type SubscribeHandlers = { 
/**
 * State changes of this subscription: `subscribing`, `subscribed` (with `recovered` after a
 * resubscribe), `failed`, `unsubscribed`.
 */
onState?: (state: SubscriptionState) => void, 
/**
 * Events may have been missed (the hub restarted, or its history no longer reaches back):
 * refetch what the view shows. Live events follow; none is ever delivered twice.
 */
onGap?: (gap: Gap) => void, 
/**
 * Join the channel's presence (implied by `onPresence`, `onJoin` or `onLeave`): the
 * subscription is one of the channel's members while the client is authenticated as a
 * user, and `handle.members` is who is there.
 */
presence?: boolean, 
/**
 * Who is on the channel: after the subscribe, and again after each reconnect (after the
 * joins and leaves the reconnect brought).
 */
onPresence?: (presence: PresenceList) => void, 
/**
 * A user joined the channel (their first connection).
 */
onJoin?: (change: MemberChange) => void, 
/**
 * A user left the channel (their last connection).
 */
onLeave?: (change: MemberChange) => void, 
/**
 * A signal from another subscriber of the channel (its `user` is set by the hub).
 */
onSignal?: (signal: Extract<ServerMessage, { type: "signal" }>) => void, 
/**
 * Continue from this position (a `sub.position` saved earlier, or a history's `seq` and
 * `epoch`): the events after it are replayed — or `onGap` says they cannot be — and none
 * is delivered twice.
 */
since?: Since, 
/**
 * Unsubscribes when this signal aborts (e.g. a component's `AbortController` on unmount).
 */
signal?: AbortSignal, };

/**
 * What a subscription's `onState` handler receives.
 */
export type SubscriptionState = { 
/**
 * The canonical channel.
 */
channel: string, 
/**
 * The new state.
 */
state: SubscriptionStateName, 
/**
 * `subscribed` after a resubscribe: whether every missed event is being replayed
 * (`false` comes with an `onGap` call).
 */
recovered?: boolean, 
/**
 * `failed`: the hub's error code.
 */
code?: ErrorCode, 
/**
 * `failed`: the hub's message.
 */
message?: string, };

/**
 * A subscription state name.
 */
export type SubscriptionStateName = "subscribing" | "subscribed" | "failed" | "unsubscribed";

/**
 * What a subscription's `onGap` handler receives: events may have been missed — refetch what
 * the view shows. Live events follow.
 */
export type Gap = { 
/**
 * The canonical channel.
 */
channel: string, 
/**
 * The last seq delivered before the gap.
 */
lastSeq?: number, 
/**
 * The stream position live delivery resumes after.
 */
resumeSeq?: number, 
/**
 * Why.
 */
reason: GapReasonName, };

/**
 * Why a subscription has a gap.
 */
export type GapReasonName = "epoch_changed" | "not_recovered" | "no_position";

/**
 * What `onError` listeners receive: an `error` frame from the hub that concerns no subscription
 * (e.g. `rate_limited`).
 */
export type ErrorInfo = { 
/**
 * The machine-readable code, when the hub sent a known one.
 */
code?: ErrorCode, 
/**
 * The hub's message.
 */
message: string, };

/**
 * What `onPresence` receives.
 */
export type PresenceList = { 
/**
 * The canonical channel.
 */
channel: string, 
/**
 * Every member, by user name.
 */
members: PresenceMember[], };

/**
 * What `onJoin` and `onLeave` receive.
 */
export type MemberChange = { 
/**
 * The canonical channel.
 */
channel: string, 
/**
 * Who joined or left.
 */
user: string, };

/**
 * One member of a channel's presence.
 */
export type PresenceMember = { 
/**
 * The user.
 */
user: string, 
/**
 * The user's connections subscribed to the channel with presence.
 */
connections: number, };

/**
 * The type of the `data` of each event kind.
 */
export type EventDataByKind = {
  push: PushEventData;
  branch_created: JsonValue;
  branch_deleted: JsonValue;
  tag_created: JsonValue;
  tag_deleted: JsonValue;
  pr_opened: PullRequestEventData;
  pr_closed: PullRequestEventData;
  pr_merged: PullRequestEventData;
  pr_updated: PullRequestEventData;
  pr_reopened: PullRequestEventData;
  pr_review: ReviewEventData;
  pr_comment: CommentEventData;
  issue_opened: IssueEventData;
  issue_closed: IssueEventData;
  issue_reopened: IssueEventData;
  issue_updated: IssueEventData;
  issue_comment: CommentEventData;
  label_added: JsonValue;
  label_removed: JsonValue;
  repo_created: JsonValue;
  repo_updated: JsonValue;
  collaborator_added: JsonValue;
  collaborator_removed: JsonValue;
};

/**
 * An `event` frame of kind `K`, as the client receives it.
 */
export type EventFrame<K extends EventKind = EventKind> = { [P in K]: {
  type: "event";
  channel: Channel;
  event: P;
  data: EventDataByKind[P];
  timestamp: number;
  event_id: string;
  seq?: number;
} }[K];

/**
 * An `event` frame of a kind this version does not know (sent by a newer hub): delivered, never
 * dropped, but outside `EventFrame` so that narrowing on `event` stays exact. Reach it from a
 * `default:` branch with a cast.
 */
export type UnknownEventFrame = {
  type: "event";
  channel: Channel;
  event: string;
  data: JsonValue;
  timestamp: number;
  event_id: string;
  seq?: number;
};

/**
 * A repository's channels: all of it, its pull requests or issues, or one of them.
 */
export type RepoChannel =
  | `repo:${string}/${string}`
  | `repo:${string}/${string}/prs`
  | `repo:${string}/${string}/issues`
  | `repo:${string}/${string}/prs/${number}`
  | `repo:${string}/${string}/issues/${number}`;

/**
 * A channel name (`docs/PROTOCOL.md`, "Channels").
 */
export type Channel = RepoChannel | `user:${string}` | `org:${string}`;

/**
 * The close-code registry: what the client does after a close with each code (`terminal`: stays
 * closed; `reconnect`: with backoff; `hinted`: after `delayMs`, or the close reason's
 * `retry_after_ms=N`). Codes not listed: 3500–3999 and 4500–4999 are terminal, the rest reconnect.
 */
export type CloseCodeRegistry = {
  1000: { name: "normal"; action: "terminal" };
  1001: { name: "going_away"; action: "reconnect" };
  1002: { name: "protocol_error"; action: "terminal" };
  1003: { name: "unsupported_data"; action: "terminal" };
  1005: { name: "no_status"; action: "reconnect" };
  1006: { name: "abnormal"; action: "reconnect" };
  1007: { name: "invalid_payload"; action: "terminal" };
  1008: { name: "policy"; action: "terminal" };
  1009: { name: "message_too_big"; action: "terminal" };
  1010: { name: "extension_required"; action: "terminal" };
  1011: { name: "internal_error"; action: "reconnect" };
  1012: { name: "service_restart"; action: "reconnect" };
  1013: { name: "try_again_later"; action: "hinted"; delayMs: 5000 };
  1014: { name: "bad_gateway"; action: "reconnect" };
  4000: { name: "heartbeat_timeout"; action: "reconnect" };
  4001: { name: "unauthenticated"; action: "terminal" };
  4002: { name: "token_expired"; action: "reconnect" };
  4003: { name: "forbidden"; action: "terminal" };
  4008: { name: "slow_consumer"; action: "reconnect" };
  4009: { name: "server_heartbeat_timeout"; action: "reconnect" };
  4029: { name: "rate_limited"; action: "hinted"; delayMs: 10000 };
  4503: { name: "connection_limit"; action: "hinted"; delayMs: 5000 };
};

/**
 * A close code of the registry.
 */
export type CloseCode = keyof CloseCodeRegistry;

/**
 * The codes after which the client stays closed.
 */
export type TerminalCloseCode = { [C in CloseCode]: CloseCodeRegistry[C]["action"] extends "terminal" ? C : never }[CloseCode];
