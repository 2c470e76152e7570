//! Native SDK of guts-realtime (filled by the native-SDK and hub-server issues).
