//! Shared pieces of the example programs and their tests: the controllable loopback TCP
//! [`proxy`] used by fault tests and benchmarks.
#![warn(missing_docs)]

pub mod proxy;
