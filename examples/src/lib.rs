//! Shared pieces of the example programs and their tests: the controllable loopback TCP
//! [`proxy`] used by fault tests and benchmarks, [`hub_process`] to run `guts-hub`, and
//! [`redis_process`] to run `redis-server` for the multi-node tests, and [`mutant_proxy`], the
//! broken hubs the conformance suite is shown to fail against.
#![warn(missing_docs)]

pub mod bench;
pub mod hub_process;
pub mod mutant_proxy;
pub mod proxy;
pub mod redis_process;
pub mod sub_reader;
