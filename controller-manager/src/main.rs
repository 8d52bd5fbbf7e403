//! kube-controller-manager: wiring only.

use clap::Parser;
use controller_manager::{app, options::Options};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let options = Options::parse();
    component_base::logging::init(options.verbosity, options.logging_format);
    let _ = rustls::crypto::ring::default_provider().install_default();
    app::run(options).await?;
    Ok(())
}
