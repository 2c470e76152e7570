// The wasm module (sdk-wasm/src/abi.rs): loading it, and strings across its boundary. It imports
// nothing, so one instance serves every client, and no call into it ever calls back out: one
// scratch buffer carries every string passed in.

/** The module's exports, once instantiated. */
export let wasm;
let loading;
let scratch = 0;
let room = 0;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * Instantiates the module synchronously from its bytes or a compiled `WebAssembly.Module`
 * (`{ module }` or the value itself). A no-op once loaded.
 */
export function initSync(m) {
  if (!wasm) {
    m = m?.module ?? m;
    wasm = new WebAssembly.Instance(m instanceof WebAssembly.Module ? m : new WebAssembly.Module(m)).exports;
  }
  return wasm;
}

/**
 * Loads the module once: from `input` (a URL or string to fetch, a `Response`, bytes, a
 * `WebAssembly.Module`, a promise of one of them, or `{ module_or_path }` holding one), by
 * default `guts_realtime_bg.wasm` next to this file. Clients call it by themselves.
 */
export default function init(input) {
  return (loading ??= (async () => {
    if (wasm) return wasm;
    let m = await (input?.module_or_path ?? input ?? new URL("./guts_realtime_bg.wasm", import.meta.url));
    if (typeof m == "string" || m instanceof URL || (typeof Request == "function" && m instanceof Request)) m = await fetch(m);
    if (typeof Response == "function" && m instanceof Response) {
      if (!m.ok) throw new Error(`fetching ${m.url}: HTTP ${m.status}`);
      m = await m.arrayBuffer();
    }
    const r = await WebAssembly.instantiate(m);
    return (wasm ??= (r.instance ?? r).exports);
  })().catch((e) => {
    loading = undefined; // a later call tries again
    throw e;
  }));
}

/** The module's memory as bytes (a new view after the memory grew). */
function bytes() {
  const b = wasm.memory.buffer;
  return heap?.buffer == b ? heap : (heap = new Uint8Array(b));
}
let heap;
/** The last two strings written, and where: most calls pass the same channel and kind again. */
let lastA, lastB, last;

/** Writes `a` and `b` (strings; absent: empty) as UTF-8 into the scratch buffer: `[p1, n1, p2, n2]`. */
export function strings(a = "", b = "") {
  if (a === lastA && b === lastB) return last;
  const need = (a.length + b.length) * 3;
  if (need > room) {
    if (room) wasm.free(scratch, room);
    scratch = wasm.alloc((room = need + 256));
  }
  const mem = bytes().subarray(scratch, scratch + room);
  const n = encoder.encodeInto(a, mem).written;
  lastA = a;
  lastB = b;
  return (last = [scratch, n, scratch + n, encoder.encodeInto(b, mem.subarray(n)).written]);
}

/** The `n` bytes of UTF-8 at `p` in the module's memory. */
export function text(p, n) {
  const mem = bytes();
  // Short ASCII (most outputs: `["M",3,0]`) without a call into the decoder.
  if (n < 48) {
    let s = "";
    for (let i = p; i < p + n; i++) {
      if (mem[i] > 127) return decoder.decode(mem.subarray(p, p + n));
      s += String.fromCharCode(mem[i]);
    }
    return s;
  }
  return decoder.decode(mem.subarray(p, p + n));
}
