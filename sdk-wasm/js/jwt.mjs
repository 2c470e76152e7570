// HS256 JWT for tests: `node jwt.mjs SECRET SUB` prints a token with claims {sub, exp}. The exp is
// fixed (2100-01-01) so the same inputs always give the same token (no test rebuilds).
import { createHmac } from "node:crypto";

const b64 = (v) => Buffer.from(typeof v === "string" ? v : JSON.stringify(v)).toString("base64url");

/** Signs `claims` with `secret` (HS256). */
export function sign(secret, claims) {
  const head = `${b64({ alg: "HS256", typ: "JWT" })}.${b64(claims)}`;
  return `${head}.${createHmac("sha256", secret).update(head).digest("base64url")}`;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [secret, sub] = process.argv.slice(2);
  console.log(sign(secret, { sub, exp: 4102444800 }));
}
