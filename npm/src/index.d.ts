// The API of @guts/realtime (the classes and functions of sdk-wasm/js/src/). The frames, event
// kinds, options and callback objects are in types.d.ts, generated from the Rust types.
export * from "./types.js";
import type { Channel, Since, ClientOptions, ErrorCode, ErrorInfo, EventFrame, PresenceMember, ServerMessage, StateChange, StateName, SubscribeHandlers, SubscriptionStateName } from "./types.js";

/**
 * What a subscription callback receives: the `event` or `notification` frame, as `JSON.parse`
 * made it. Events are a union discriminated by `event`: after `ev.event === "pr_opened"`,
 * `ev.data` is a `PullRequestEventData`. (Events of a kind from a newer hub arrive too, typed
 * `UnknownEventFrame`: reach them from a `default:` branch.)
 */
export type EventMessage = EventFrame | Extract<ServerMessage, { type: "notification" }>;
/** A signal from another subscriber of an item channel, as `onSignal` receives it. */
export type SignalMessage = Extract<ServerMessage, { type: "signal" }>;
/** What `client.history()` resolves to: the `history` frame, its events typed as a subscription's. */
export type HistoryMessage = Omit<Extract<ServerMessage, { type: "history" }>, "events"> & { events: EventMessage[] };
/** What `client.presence()` resolves to: the `presence` frame. */
export type PresenceMessage = Extract<ServerMessage, { type: "presence" }>;

/** What `presence()` and `history()` reject with: the hub's error code, when it sent one. */
export interface RequestError extends Error {
  code?: ErrorCode;
}

/** Where a listener is added: `signal` removes it when it aborts. */
export interface ListenerOptions {
  signal?: AbortSignal;
}

/**
 * A connection to a Guts real-time hub that reconnects by itself, resubscribes, recovers missed
 * events (or reports a gap), and never delivers an event twice.
 *
 * ```ts
 * const client = new RealtimeClient("wss://hub.example/ws", { token: () => fetchToken() });
 * const sub = client.subscribe("repo:alice/app", (ev) => render(ev), { onGap: () => refetch() });
 * await sub.ready();
 * ```
 */
export class RealtimeClient {
  /**
   * Creates the client and starts connecting (on the next microtask, so listeners added right
   * after the constructor see the first state). Loads the wasm by itself: calls made before it
   * is loaded wait. `url` is the hub's WebSocket URL (`wss://host/ws`). Throws on a URL that is
   * not `ws://` or `wss://` and on a bad option.
   */
  constructor(url: string, options?: ClientOptions);
  /**
   * Subscribes to a channel (`repo:owner/name`, `repo:owner/name/prs`, `…/issues`,
   * `…/prs/N`, `…/issues/N`, `user:name`, `org:name`). `callback` receives every event of the
   * channel once, in order; `handlers` may add `onState`, `onGap`, presence and signal handlers,
   * and a `signal` that unsubscribes when it aborts. Works in any state: the subscription is
   * sent (again) on every connect. Throws on an invalid channel, past the subscription limit,
   * or after `close()`.
   */
  subscribe(channel: Channel, callback: (event: EventMessage) => void, handlers?: SubscribeHandlers): SubscriptionHandle;
  /**
   * Adds a connection-state listener: `{ state, reason, code?, retryIn?, attempt? }` on every
   * change (`connecting`, `authenticating`, `connected`, `reconnecting`, `closed`). Returns the
   * function that removes it.
   */
  onState(listener: (state: StateChange) => void, options?: ListenerOptions): () => void;
  /**
   * Adds a listener for hub errors that concern no subscription (e.g. `rate_limited`). Returns
   * the function that removes it.
   */
  onError(listener: (error: ErrorInfo) => void, options?: ListenerOptions): () => void;
  /** Resolves when connected; rejects (with the reason and `code`) if the client closes first. */
  ready(): Promise<void>;
  /**
   * Sends a signal (`event`, with `data`) to the other subscribers of an item channel
   * (`repo:o/n/prs/N`, `repo:o/n/issues/N`), e.g. a typing indicator. Ephemeral: sent only while
   * connected (returns `false` otherwise), never stored or replayed; the hub names the sender. A
   * refusal (`forbidden`, `rate_limited`) reaches `onError`.
   */
  signal(channel: Channel, event: string, data?: unknown): boolean;
  /** Who is on a channel, without joining its presence. Rejects with a {@link RequestError}. */
  presence(channel: Channel): Promise<PresenceMessage>;
  /**
   * The last `limit` events of a channel (1 to 100, default 20), oldest first, with the position
   * after them (`seq`, `epoch`): render them, then subscribe to continue with nothing missed or
   * repeated. Rejects with a {@link RequestError} when refused or not answered within 10 s.
   */
  history(channel: Channel, limit?: number): Promise<HistoryMessage>;
  /** The current connection state name. */
  readonly state: StateName;
  /**
   * Starts connecting again after the client stopped by itself (a rejected token or a terminal
   * close code left it `closed`). A no-op while running, and after `close()`.
   */
  connect(): void;
  /**
   * Closes the connection for good (code 1000), delivers the final `closed` state, and removes
   * every listener, timer and callback the client holds. Idempotent.
   */
  close(): void;
}

/** One subscription made with `RealtimeClient.subscribe`. */
export interface SubscriptionHandle {
  /** The channel as given. */
  readonly channel: Channel;
  /** The current state (`"unsubscribed"` after `unsubscribe()`). */
  readonly state: SubscriptionStateName;
  /** Who is on the channel, by user (empty unless subscribed with presence). */
  readonly members: PresenceMember[];
  /**
   * Where the subscription is in its channel's stream (`null` before its first event or
   * position): save it, and pass it as `since` to a later `subscribe` — in another client,
   * after a restart — to continue with nothing missed or repeated (or an `onGap`).
   */
  readonly position: Since | null;
  /** Resolves when subscribed; rejects when the subscription fails or is unsubscribed first. */
  ready(): Promise<void>;
  /**
   * Stops this subscription: its callbacks are not called again. The channel is unsubscribed at
   * the hub when no other handle holds it. Idempotent.
   */
  unsubscribe(): void;
}

/** The same as `new RealtimeClient(url, options)`. */
export function createClient(url: string, options?: ClientOptions): RealtimeClient;

/** What `init` and `initSync` load the wasm from. */
export type InitInput = RequestInfo | URL | Response | BufferSource | WebAssembly.Module;

/**
 * Loads the wasm (once): by default `guts_realtime_bg.wasm` next to the package's JavaScript,
 * or from `input`. Clients call it by themselves; call it yourself to load early, or to load
 * from elsewhere. A no-op in Node.
 */
export default function init(input?: InitInput | Promise<InitInput> | { module_or_path: InitInput | Promise<InitInput> }): Promise<unknown>;

/** Loads the wasm synchronously from its bytes or a compiled module. */
export function initSync(module: BufferSource | WebAssembly.Module | { module: BufferSource | WebAssembly.Module }): unknown;
