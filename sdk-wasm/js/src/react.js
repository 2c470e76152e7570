// React bindings of @guts/realtime (the entry `@guts/realtime/react`, declared in
// npm/src/react.d.ts): a provider that owns one client, and hooks whose subscriptions follow the
// component's lifecycle. Every effect undoes itself in its cleanup, so StrictMode's
// mount → unmount → mount leaves exactly one client and one subscription per hook, and an
// unmount leaves none.
import { createContext, createElement, useContext, useEffect, useRef, useState, useSyncExternalStore } from "react";
import { RealtimeClient } from "@guts/realtime";

const Context = createContext(null);

/**
 * Makes one client for `url` (made again when `url` changes; `options` are read then) and gives
 * it to the hooks below it; closes it on unmount.
 */
export function RealtimeProvider({ url, options, children }) {
  const [client, setClient] = useState(null);
  const opts = useRef(options);
  opts.current = options;
  useEffect(() => {
    const c = new RealtimeClient(url, opts.current);
    setClient(c);
    return () => {
      c.close();
      setClient((now) => (now === c ? null : now));
    };
  }, [url]);
  return createElement(Context.Provider, { value: client }, children);
}

/** The provider's client (`null` until it is made). */
export function useRealtime() {
  return useContext(Context);
}

/** The client's connection state name (`"idle"` before there is a client). */
export function useConnectionState() {
  const client = useContext(Context);
  return useSyncExternalStore(
    (changed) => (client ? client.onState(changed) : () => {}),
    () => (client ? client.state : "idle"),
    () => "idle",
  );
}

/**
 * Subscribes to `channel` while the component is mounted: `onEvent` gets each event once, in
 * order; `options` may add the other handlers of `subscribe` (`onGap`, `onState`, …). The latest
 * callbacks are called without subscribing again; a change of `channel` subscribes anew.
 * Returns the subscription (`null` until there is a client).
 */
export function useChannel(channel, onEvent, options) {
  return useSubscription(channel, onEvent, options, false).handle;
}

/**
 * Joins `channel`'s presence while the component is mounted; returns who is there
 * (`[{ user, connections }]`), kept current as users join and leave.
 */
export function usePresence(channel) {
  return useSubscription(channel, null, null, true).members;
}

/** The subscription of the two hooks above. */
function useSubscription(channel, onEvent, options, presence) {
  const client = useContext(Context);
  const latest = useRef();
  latest.current = { onEvent, options };
  const [state, setState] = useState({ handle: null, members: [] });
  useEffect(() => {
    if (!client || !channel) return;
    const call = (k) => (v) => latest.current.options?.[k]?.(v);
    const members = () => setState({ handle, members: handle.members });
    const handle = client.subscribe(channel, (ev) => latest.current.onEvent?.(ev), {
      onState: call("onState"),
      onGap: call("onGap"),
      onSignal: call("onSignal"),
      ...(presence && { onPresence: members, onJoin: members, onLeave: members }),
    });
    setState({ handle, members: [] });
    return () => handle.unsubscribe();
  }, [client, channel, presence]);
  return state;
}
