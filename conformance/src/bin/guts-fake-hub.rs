//! `guts-fake-hub SCENARIO.json [--listen ADDR]`: plays a scenario (see
//! `guts_conformance::fake_hub`) against the client that connects. Prints
//! `fake hub listening on ws://ADDR/ws`, then `scenario passed` (exit 0) or
//! `scenario failed at step N: …` (exit 1); 2 for a bad scenario file.

use clap::Parser;
use guts_conformance::fake_hub::{FakeHub, Scenario};
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

/// A scripted fake hub for testing client SDKs (docs/CONFORMANCE.md).
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// The scenario file.
    scenario: PathBuf,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: String,
}

#[tokio::main]
async fn main() -> ExitCode {
    let a = Args::parse();
    let scenario = match Scenario::load(&a.scenario) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("guts-fake-hub: {e}");
            return ExitCode::from(2);
        }
    };
    let hub = match FakeHub::start(scenario, &a.listen).await {
        Ok(h) => h,
        Err(e) => {
            eprintln!("guts-fake-hub: {}: {e}", a.listen);
            return ExitCode::FAILURE;
        }
    };
    println!("fake hub listening on {}", hub.url);
    let _ = std::io::stdout().flush();
    match hub.result().await {
        Ok(()) => {
            println!("scenario passed");
            ExitCode::SUCCESS
        }
        Err(f) => {
            println!("scenario failed at {f}");
            ExitCode::FAILURE
        }
    }
}
