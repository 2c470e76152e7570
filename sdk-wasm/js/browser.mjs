// Playwright-core with Debian's Chromium (/usr/bin/chromium), for the browser tests.
import { chromium } from "playwright-core";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

export const ARTIFACTS = new URL("../../artifacts/", import.meta.url).pathname;

/** A headless Chromium; `close()` also removes its profile. `httpCredentials` ({username,
 * password}): answer HTTP Basic challenges of every page with them. */
export async function launch({ httpCredentials } = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pw-profile-"));
  const ctx = await chromium.launchPersistentContext(dir, {
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    headless: true,
    viewport: { width: 1000, height: 760 },
    ...(httpCredentials ? { httpCredentials } : {}),
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  return {
    async page() {
      const page = ctx.pages()[0] ?? (await ctx.newPage());
      page.on("pageerror", (e) => console.error("pageerror:", e.message));
      return page;
    },
    /** Another tab of the same browser. */
    async newPage() {
      const page = await ctx.newPage();
      page.on("pageerror", (e) => console.error("pageerror:", e.message));
      return page;
    },
    async close() {
      await ctx.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Saves a screenshot into artifacts/ (gitignored). */
export async function screenshot(page, name) {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: path.join(ARTIFACTS, name) });
}
