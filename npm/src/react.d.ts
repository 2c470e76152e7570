// The React bindings of @guts/realtime (`@guts/realtime/react`).
import type { ReactNode, ReactElement } from "react";
import type { Channel, ClientOptions, EventMessage, PresenceMember, RealtimeClient, StateName, SubscribeHandlers, SubscriptionHandle } from "./guts_realtime.js";

/**
 * Makes one client for `url` and gives it to the hooks below it; closes it on unmount. A new
 * `url` makes a new client; `options` are read when the client is made. Correct under
 * StrictMode: its extra mount and unmount leave exactly one client.
 *
 * ```tsx
 * <RealtimeProvider url="wss://hub.example/ws" options={{ token: fetchToken }}>
 *   <PullRequest owner="alice" repo="app" number={7} />
 * </RealtimeProvider>
 * ```
 */
export function RealtimeProvider(props: { url: string; options?: ClientOptions; children?: ReactNode }): ReactElement;

/** The provider's client (`null` until it is made, on the provider's first effect). */
export function useRealtime(): RealtimeClient | null;

/** The connection state name, re-rendering on every change (`"idle"` before there is a client). */
export function useConnectionState(): StateName;

/**
 * Subscribes to `channel` while the component is mounted; `onEvent` receives each event once,
 * in order. `options` may add the other handlers of `subscribe` (`onGap`, `onState`,
 * `onSignal`). The latest callbacks are always the ones called (no resubscribe when they
 * change); a new `channel` subscribes anew; unmount unsubscribes. Returns the subscription
 * (`null` until there is a client).
 *
 * ```tsx
 * useChannel(`repo:${owner}/${repo}/prs/${n}`, (ev) => {
 *   if (ev.type === "event" && ev.event === "pr_updated") setTitle(ev.data.title);
 * }, { onGap: () => refetch() });
 * ```
 */
export function useChannel(
  channel: Channel | null | undefined,
  onEvent: (event: EventMessage) => void,
  options?: Pick<SubscribeHandlers, "onGap" | "onState" | "onSignal">,
): SubscriptionHandle | null;

/**
 * Joins `channel`'s presence while the component is mounted; returns who is there, kept
 * current as users join and leave (a user with several tabs is one member).
 */
export function usePresence(channel: Channel | null | undefined): PresenceMember[];
