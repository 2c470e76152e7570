// Type-level tests of the package's declarations (tsc --noEmit, against the installed package):
// each event kind narrows `data` to exactly its type, channels are checked, and the close-code
// registry says which codes are terminal. A wrong declaration fails to compile.
import {
  RealtimeClient,
  type CloseCodeRegistry,
  type CommentEventData,
  type EventMessage,
  type IssueEventData,
  type JsonValue,
  type PullRequestEventData,
  type PushEventData,
  type ReviewEventData,
  type TerminalCloseCode,
  type UnknownEventFrame,
} from "@guts/realtime";

/** `true` only when A and B are the same type. */
type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
function same<A, B>(_: Equal<A, B>): void {}

export function narrow(ev: EventMessage): string {
  if (ev.type === "notification") return ev.notification.title;
  switch (ev.event) {
    case "push": same<typeof ev.data, PushEventData>(true); return ev.data.ref;
    case "branch_created": same<typeof ev.data, JsonValue>(true); break;
    case "branch_deleted": same<typeof ev.data, JsonValue>(true); break;
    case "tag_created": same<typeof ev.data, JsonValue>(true); break;
    case "tag_deleted": same<typeof ev.data, JsonValue>(true); break;
    case "pr_opened": same<typeof ev.data, PullRequestEventData>(true); return ev.data.title;
    case "pr_closed": same<typeof ev.data, PullRequestEventData>(true); break;
    case "pr_merged": same<typeof ev.data, PullRequestEventData>(true); break;
    case "pr_updated": same<typeof ev.data, PullRequestEventData>(true); break;
    case "pr_reopened": same<typeof ev.data, PullRequestEventData>(true); break;
    case "pr_review": same<typeof ev.data, ReviewEventData>(true); return ev.data.state;
    case "pr_comment": same<typeof ev.data, CommentEventData>(true); break;
    case "issue_opened": same<typeof ev.data, IssueEventData>(true); break;
    case "issue_closed": same<typeof ev.data, IssueEventData>(true); break;
    case "issue_reopened": same<typeof ev.data, IssueEventData>(true); break;
    case "issue_updated": same<typeof ev.data, IssueEventData>(true); break;
    case "issue_comment": same<typeof ev.data, CommentEventData>(true); break;
    case "label_added": same<typeof ev.data, JsonValue>(true); break;
    case "label_removed": same<typeof ev.data, JsonValue>(true); break;
    case "repo_created": same<typeof ev.data, JsonValue>(true); break;
    case "repo_updated": same<typeof ev.data, JsonValue>(true); break;
    case "collaborator_added": same<typeof ev.data, JsonValue>(true); break;
    case "collaborator_removed": same<typeof ev.data, JsonValue>(true); break;
    default: {
      // Every known kind is handled above; a newer hub's kind lands here.
      const _exhaustive: never = ev;
      return (ev as unknown as UnknownEventFrame).event;
    }
  }
  return ev.event;
}

export function channels(client: RealtimeClient): void {
  const cb = (_: EventMessage) => {};
  client.subscribe("repo:alice/app", cb);
  client.subscribe("repo:alice/app/prs", cb);
  client.subscribe("repo:alice/app/issues/12", cb);
  client.subscribe("user:alice", cb);
  client.subscribe("org:guts", cb);
  // @ts-expect-error: a repository channel names owner/name
  client.subscribe("repo:alice", cb);
  // @ts-expect-error: no such channel type
  client.subscribe("team:core", cb);
  client.signal("repo:alice/app/prs/7", "typing", { line: 3 });
}

export function closeCodes(): void {
  same<TerminalCloseCode, 1000 | 1002 | 1003 | 1007 | 1008 | 1009 | 1010 | 4001 | 4003>(true);
  same<CloseCodeRegistry[4029], { name: "rate_limited"; action: "hinted"; delayMs: 10000 }>(true);
}
