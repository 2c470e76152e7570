// An example app, type-checked by the tests (tsc --noEmit) against the installed package.
import init, {
  RealtimeClient,
  type EventMessage,
  type Gap,
  type PullRequestEventData,
  type StateChange,
  type SubscriptionHandle,
} from "@guts/realtime";

export async function main(url: string, getToken: () => Promise<string>): Promise<() => void> {
  await init();
  const client = new RealtimeClient(url, {
    token: getToken,
    backoff: { base: 500, max: 20_000 },
    heartbeat: { interval: 20_000, timeout: 10_000 },
  });
  client.onState((s: StateChange) => {
    const retry: number | undefined = s.retryIn;
    console.log(s.state, s.reason, s.code ?? "-", retry ?? "-");
  });
  client.onError((e) => console.warn(e.code ?? "unknown", e.message));
  const sub: SubscriptionHandle = client.subscribe(
    "repo:alice/app/prs",
    (ev: EventMessage) => {
      if (ev.type === "event") {
        const seq: number | undefined = ev.seq;
        if (ev.event === "pr_opened") {
          const pr: PullRequestEventData = ev.data; // narrowed by the kind: no cast
          console.log(`#${pr.number} ${pr.title} at seq ${seq ?? "?"}`);
        }
      } else {
        console.log(ev.notification.title);
      }
    },
    { onGap: (g: Gap) => console.log("refetch", g.channel, g.reason), onState: (s) => console.log(s.state) },
  );
  const state: "idle" | "connecting" | "authenticating" | "connected" | "reconnecting" | "closed" = client.state;
  console.log(state, sub.channel, sub.state);
  const saved = sub.position; // { seq, epoch } | null: continue from it later
  if (saved) client.subscribe("repo:alice/app/prs", () => {}, { since: saved });
  return () => {
    sub.unsubscribe();
    client.close();
  };
}
