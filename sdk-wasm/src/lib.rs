//! Browser SDK of guts-realtime (filled by the wasm-SDK issue).
