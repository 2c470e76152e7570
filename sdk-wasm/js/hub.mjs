// Starts and stops a real guts-hub process on 127.0.0.1 for the JS tests.
import { spawn } from "node:child_process";
import { once } from "node:events";

export const SECRET = "js-test-secret-0123456789abcdef-01";
export const PUBLISH_KEY = "js-test-publish-key";
const BIN = process.env.GUTS_HUB_BIN ?? new URL("../../target/debug/guts-hub", import.meta.url).pathname;

/** A running guts-hub; `stop()` kills it (SIGKILL) and waits for the exit. */
export async function startHub({ port = 0, webDir, demo = false, repoAccess = "public" } = {}) {
  const args = ["--listen", `127.0.0.1:${port}`, "--token-secret", SECRET, "--publish-key", PUBLISH_KEY,
    "--repo-access", repoAccess];
  if (webDir) args.push("--web-dir", webDir);
  if (demo) args.push("--demo");
  const child = spawn(BIN, args, { stdio: ["ignore", "pipe", "inherit"], env: { ...process.env, RUST_LOG: "warn" } });
  const addr = await new Promise((resolve, reject) => {
    let buf = "";
    const timer = setTimeout(() => reject(new Error("guts-hub did not start: " + buf)), 20000);
    child.stdout.on("data", (d) => {
      buf += d;
      const m = buf.match(/listening on http:\/\/([\d.]+:\d+)/);
      if (m) { clearTimeout(timer); resolve(m[1]); }
    });
    child.on("exit", (code) => reject(new Error(`guts-hub exited (${code}): ${buf}`)));
  });
  child.stdout.resume();
  return {
    addr,
    port: Number(addr.split(":")[1]),
    ws: `ws://${addr}/ws`,
    http: `http://${addr}`,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGKILL");
        await once(child, "exit");
      }
    },
  };
}

/** POST /api/publish; returns the seq. */
export async function publish(hub, channel, event = "push", data = {}) {
  const res = await fetch(`${hub.http}/api/publish`, {
    method: "POST",
    headers: { authorization: `Bearer ${PUBLISH_KEY}`, "content-type": "application/json" },
    body: JSON.stringify({ channel, event, data }),
  });
  if (!res.ok) throw new Error(`publish: ${res.status} ${await res.text()}`);
  return (await res.json()).seq;
}

/** Polls `fn` until it returns a truthy value (or throws after `ms`). */
export async function until(fn, ms = 10000, what = "condition") {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
