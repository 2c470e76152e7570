// The shared wire vectors (protocol/tests/vectors/*.json), checked against the package's code:
// client frames byte for byte with the session's own encoder (encodeCommand, in wasm), server
// frames through JSON.parse (deep-equal to `value`) and through the driver's own reading of the
// fields the session needs (decodeFrame: sdk-wasm/js/src/frames.js). GUTS_VECTORS points at the
// vectors directory. The two hooks are not in the published bundle: GUTS_VECTORS_PKG is a test
// copy built with `scripts/build-npm.sh --vectors DIR` (scripts/test-wasm.sh makes it).
import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";

const PKG = process.env.GUTS_VECTORS_PKG;
if (!PKG) throw new Error("GUTS_VECTORS_PKG must point at the `vectors` build (scripts/test-wasm.sh)");
const { initSync, encodeCommand, decodeFrame } = await import(path.join(PKG, "guts_realtime.js"));
initSync({ module: fs.readFileSync(path.join(PKG, "guts_realtime_bg.wasm")) });

const DIR = process.env.GUTS_VECTORS ?? new URL("../../protocol/tests/vectors/", import.meta.url).pathname;
const files = fs.readdirSync(DIR).filter((f) => f.endsWith(".json")).sort();

test("the vector set is there", () => {
  assert.ok(files.length >= 16, `only ${files.length} files in ${DIR}`);
});

for (const file of files) {
  const { direction, cases } = JSON.parse(fs.readFileSync(path.join(DIR, file), "utf8"));
  for (const c of cases) {
    test(`${file} ${c.name}`, () => {
      assert.deepEqual(JSON.parse(c.text), c.value, "text parses to value");
      if (direction === "client") {
        if (c.value.type === "publish") {
          // The browser client never publishes: its build has no publish encoder.
          assert.throws(() => encodeCommand(c.value), /not a command this client sends/);
          return;
        }
        assert.equal(encodeCommand(c.value), c.text, "the client encodes exactly the text");
      } else {
        const seen = decodeFrame(c.text);
        const v = c.value;
        const kind = v.type === "notification" ? "event" : v.type;
        assert.equal(seen.kind, kind === "published" ? "other" : kind);
        if (kind === "published") return; // not a frame the session reads
        assert.equal(seen.id, typeof v.id === "number" && kind !== "signal" ? v.id : undefined, "id");
        // Signals and histories go to the application as they are: the driver reads only what
        // routes them (a signal's channel; a history's id).
        const passed = kind === "signal" || kind === "history";
        for (const k of ["channel", "epoch", "user", "message"]) {
          if (k in v && !(passed && (k !== "channel" || kind === "history"))) assert.equal(seen[k], v[k], k);
        }
        if ("seq" in v && !passed) assert.equal(seen.seq, v.seq, "seq");
        if ("recovered" in v) assert.equal(seen.recovered, v.recovered, "recovered");
        if (v.type === "event") assert.equal(seen.event, v.event, "event kind");
        if (v.type === "event") assert.equal(seen.item, v.data?.number ?? v.data?.pr_number ?? v.data?.parent_number, "item");
        if ("code" in v) assert.equal(seen.code, v.code, "code");
        if (kind === "presence") {
          assert.deepEqual(seen.members, v.members.map((m) => [m.user, m.connections]), "members");
        }
      }
    });
  }
}
