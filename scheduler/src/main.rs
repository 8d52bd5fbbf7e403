//! kube-scheduler: wiring only.

use clap::Parser;
use scheduler::{app, options::Options};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let opts = Options::parse();
    component_base::logging::init(opts.verbosity, opts.logging_format);
    app::run(opts).await?;
    Ok(())
}
