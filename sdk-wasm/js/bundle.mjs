// Bundles one entry of the package's JavaScript (src/) into one file (run by
// scripts/build-npm.sh): esbuild resolves the modules, terser minifies (comments, whitespace,
// local and private names; property names are kept, so the exported API is unchanged). The
// documented API is in npm/src/*.d.ts.
// Usage: node bundle.mjs <entry> <out.js> [external,…]   (externals stay imports: `react`, and
// `@guts/realtime` in the entries that share the core's module instance)
import fs from "node:fs";
import { build } from "esbuild";
import { minify } from "terser";

const [entry, out, external = ""] = process.argv.slice(2);
const bundled = await build({
  entryPoints: [entry],
  bundle: true,
  format: "esm",
  target: "es2022",
  write: false,
  legalComments: "none",
  external: external ? external.split(",") : [],
});
const min = await minify(bundled.outputFiles[0].text, {
  module: true,
  ecma: 2022,
  compress: { passes: 3, unsafe_arrows: true },
  mangle: true,
  format: { comments: false },
});
fs.writeFileSync(out, min.code);
