//! kube-scheduler: wiring only.

use clap::Parser;
use scheduler::{app, options::Options};

/// jemalloc keeps objects of one size class together, so the long-lived pod facts and
/// explanations written during a burst do not pin the pages of the burst's garbage the way
/// glibc's malloc does.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's start-up options. One arena and no per-thread caches: one thread schedules and a
/// few tasks talk to the apiserver, so allocations rarely contend, and per-thread caches of
/// freed objects would hold more memory than the scheduler's own data at small scale. The
/// background thread returns pages left free for a second, so the footprint falls back after
/// every burst.
#[unsafe(no_mangle)]
pub static malloc_conf: &[u8; 83] =
    b"narenas:1,tcache:false,dirty_decay_ms:1000,muzzy_decay_ms:0,background_thread:true\0";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let opts = Options::parse();
    component_base::logging::init(opts.verbosity, opts.logging_format);
    app::run(opts).await?;
    Ok(())
}
