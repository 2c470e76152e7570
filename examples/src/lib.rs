//! Shared pieces of the example programs and their tests: the controllable loopback TCP
//! [`proxy`] used by fault tests and benchmarks, and [`hub_process`] to run `guts-hub`.
#![warn(missing_docs)]

pub mod bench;
pub mod conformance;
pub mod hub_process;
pub mod proxy;
