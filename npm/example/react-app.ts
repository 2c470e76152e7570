// The React entry's declarations, type-checked against the installed package (with @types/react).
import { createElement as h, type ReactElement } from "react";
import { RealtimeProvider, useChannel, useConnectionState, usePresence } from "@guts/realtime/react";

function PullRequest({ owner, repo, n }: { owner: string; repo: string; n: number }): ReactElement {
  const state = useConnectionState();
  const viewers = usePresence(`repo:${owner}/${repo}/prs/${n}`);
  const sub = useChannel(
    `repo:${owner}/${repo}/prs/${n}`,
    (ev) => {
      if (ev.type === "event" && ev.event === "pr_updated") console.log(ev.data.title);
    },
    { onGap: (g) => console.log("refetch", g.reason) },
  );
  return h("p", null, `${state} ${viewers.map((m) => m.user).join(",")} ${sub?.state ?? "-"}`);
}

export const app = h(RealtimeProvider, { url: "wss://hub.example/ws", options: { shared: true } }, h(PullRequest, { owner: "alice", repo: "app", n: 7 }));
