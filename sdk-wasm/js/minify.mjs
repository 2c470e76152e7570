// Shrinks the JS side of the npm bundle (run by scripts/build-npm.sh after wasm-opt):
//   0. folds the driver's JS half (sdk-wasm/js/bridge.js, which wasm-bindgen emits as a snippet
//      under snippets/ and imports from the glue and from the wasm) into the glue, so the
//      package is one glue file and one wasm;
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

// The snippet: its source, exports made plain declarations, goes first; the import lines go.
const snippets = new Set();
glue = glue.replace(/^import (?:\{[^}]*\}|\* as import\d+) from ["'](\.\/snippets\/[^"']+)["'];?\n/gm, (_, file) => {
  snippets.add(file);
  return "";
});
if (snippets.size > 1) fail(`expected at most one snippet, got ${[...snippets]}`);
for (const file of snippets) {
  const src = fs.readFileSync(path.join(dir, file), "utf8").replace(/^export (function|const|let) /gm, "$1 ");
  // (`export class` stays: the class is part of the package's API.)
  if (/^\s*(export (?!class )|import\b)/m.test(src)) fail(`${file}: only "export function/const/let" can be folded`);
  glue = src + "\n" + glue;
  // The wasm's direct imports from the snippet join the glue's own import object.
  glue = glue.replace(new RegExp(`^\\s*${esc(JSON.stringify(file))}: import\\d+,?\\n`, "gm"), "");
}
const direct = map.imports.filter(([module]) => snippets.has(module));
if (direct.length) {
  if (!glue.includes("const import0 = {")) fail("import object not found in the glue");
  glue = glue.replace("const import0 = {", `const import0 = {\n${direct.map(([, f, s]) => `${s}: ${f},`).join("\n")}`);
}

// Imports: keys of the import object, and the module name it is registered under.
const modules = new Set();
for (const [module, field, short] of map.imports) {
  if (snippets.has(module)) continue;
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
for (const [module, field] of map.imports) {
  if (snippets.has(module)) continue;
  if (new RegExp(`(^|[\\s{,])${esc(field)}\\s*:`, "m").test(glue)) fail(`import ${field} left in the glue`);
}
dtsFiles.forEach((f, i) => fs.writeFileSync(f, dts[i]));

const out = await minify(glue, {
  module: true,
  ecma: 2020,
  // `console.warn` is only wasm-bindgen's: deprecated `init()` argument forms and a server that
  // serves the wasm without `application/wasm` (the fallback still runs, silently). The SDK's
  // own reports use `console.error`, which stays.
  compress: { passes: 2, pure_funcs: ["console.warn"] },
  mangle: true,
  format: { comments: false },
});
fs.writeFileSync(glueFile, out.code);
