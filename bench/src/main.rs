//! ferrokube-bench: throughput, latency and memory figures for ferrokube components, printed
//! next to upstream's figures on the same kind of machine. Not a pass/fail test.

mod apiserver;
mod controller_manager;
mod stats;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "ferrokube-bench", about = "Benchmarks of ferrokube components")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// create/get/list/watch throughput and latency against an apiserver.
    Apiserver(apiserver::Args),
    /// Seconds from creating Deployments to all their pods existing.
    ControllerManager(controller_manager::Args),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    match Cli::parse().command {
        Command::Apiserver(args) => apiserver::run(args).await,
        Command::ControllerManager(args) => controller_manager::run(args).await,
    }
}
