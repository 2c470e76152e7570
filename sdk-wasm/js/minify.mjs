// Shrinks the JS side of the npm bundle (run by scripts/build-npm.sh after wasm-opt):
//   1. applies wasm-opt's `--minify-imports-and-exports-and-modules` map to the wasm-bindgen glue
//      and the two .d.ts files (the wasm's import module and field names and its export names
//      became one or two letters; the glue must use the same ones), and fails if any old name
//      is left;
//   2. minifies the glue with terser (comments, whitespace, local names; property names are
//      kept, so the exported API and `wasm.<export>` accesses are unchanged). The documented
//      API stays in guts_realtime.d.ts.
// Usage: node minify.mjs <dist dir> <map.json>
import fs from "node:fs";
import path from "node:path";
import { minify } from "terser";

const [dir, mapFile] = process.argv.slice(2);
const map = JSON.parse(fs.readFileSync(mapFile, "utf8"));
const glueFile = path.join(dir, "guts_realtime.js");
const dtsFiles = ["guts_realtime.d.ts", "guts_realtime_bg.wasm.d.ts"].map((f) => path.join(dir, f));

const esc = (s) => s.replace(/[$]/g, "\\$&");
let glue = fs.readFileSync(glueFile, "utf8");
const fail = (msg) => {
  console.error(`minify.mjs: ${msg}`);
  process.exit(1);
};

// Imports: keys of the import object, and the module name it is registered under.
const modules = new Set();
for (const [module, field, short] of map.imports) {
  modules.add(module);
  const key = new RegExp(`(^|[\\s{,])${esc(field)}(?=\\s*:)`, "gm");
  if (!key.test(glue)) fail(`import ${field} not found in the glue`);
  glue = glue.replace(key, `$1${short}`);
}
if (modules.size !== 1) fail(`expected one import module, got ${[...modules]}`);
const [module] = modules;
const quoted = JSON.stringify(module);
if (!glue.includes(`${quoted}: import0`)) fail(`import module ${quoted} not found in the glue`);
glue = glue.replace(`${quoted}: import0`, `"a": import0`);

// Exports: every `wasm.<name>` access (and the export list of the two declaration files).
let dts = dtsFiles.map((f) => fs.readFileSync(f, "utf8"));
for (const [name, short] of map.exports) {
  const access = new RegExp(`\\bwasm\\.${esc(name)}(?![\\w$])`, "g");
  glue = glue.replace(access, `wasm.${short}`);
  const decl = new RegExp(`((?:readonly|export const) )${esc(name)}(?=:)`, "g");
  dts = dts.map((d) => d.replace(decl, `$1${short}`));
}
for (const [name] of map.exports) {
  if (new RegExp(`\\bwasm\\.${esc(name)}(?![\\w$])`).test(glue)) fail(`export ${name} left in the glue`);
}
for (const [, field] of map.imports) {
  if (new RegExp(`(^|[\\s{,])${esc(field)}\\s*:`, "m").test(glue)) fail(`import ${field} left in the glue`);
}
dtsFiles.forEach((f, i) => fs.writeFileSync(f, dts[i]));

const out = await minify(glue, {
  module: true,
  ecma: 2020,
  compress: { passes: 2 },
  mangle: true,
  format: { comments: false },
});
fs.writeFileSync(glueFile, out.code);
