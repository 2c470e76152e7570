//! The load generator behind `guts-bench`: one process, tokio, many WebSocket clients, bounded in
//! count and time, 127.0.0.1 only. It drives guts-hub and the Node peers with the same code.

pub mod proc;
pub mod restart;
pub mod scenarios;
pub mod server;
pub mod wire;
