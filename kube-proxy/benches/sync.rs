//! Sync-time figures for `make bench`: a full sync and a one-service incremental sync with
//! 10 000 services and 50 000 endpoints, in nftables and iptables modes (targets: full under
//! 1 s, one-service change under 50 ms).
//!
//! The rules are written into a private network namespace: the bench re-executes itself under
//! `unshare --net` (root required), so the host's own packet filter is never touched.

use std::{
    process::Command,
    sync::Arc,
    time::{Duration, Instant},
};

use kube_proxy::{
    config::KubeProxyConfiguration,
    iptables::{self, IptProxier},
    model::{Endpoint, Protocol, ServicePort, ServicePortName},
    net::Family,
    nftables::NftProxier,
    tracker::Changes,
};

const SERVICES: u32 = 10_000;
const ENDPOINTS_PER_SERVICE: u32 = 5;
const INNER: &str = "KUBE_PROXY_BENCH_IN_NETNS";

fn service(i: u32, generation: u32) -> (String, Vec<ServicePort>) {
    let endpoints: Vec<Endpoint> = (0..ENDPOINTS_PER_SERVICE)
        .map(|e| {
            let n = i * ENDPOINTS_PER_SERVICE + e + generation;
            Endpoint {
                ip: std::net::Ipv4Addr::new(10, 128 + (n >> 16) as u8, (n >> 8) as u8, n as u8)
                    .into(),
                port: 8080,
                ready: true,
                serving: true,
                terminating: false,
                node_name: Some("bench".into()),
            }
        })
        .collect();
    let name = format!("svc-{i}");
    let port = ServicePort {
        name: ServicePortName {
            namespace: "bench".into(),
            name: name.clone(),
            port_name: "http".into(),
            protocol: Protocol::Tcp,
        },
        cluster_ips: vec![std::net::Ipv4Addr::new(10, 96, (i >> 8) as u8, i as u8).into()],
        port: 80,
        node_port: Some(30000 + (i % 2768) as u16).filter(|_| i < 2768),
        external_ips: vec![],
        load_balancer_ips: vec![],
        affinity_timeout: None,
        external_policy_local: false,
        internal_policy_local: false,
        health_check_node_port: None,
        source_ranges: vec![],
        endpoints: endpoints.clone(),
        cluster_endpoints: endpoints.clone(),
        external_endpoints: endpoints.clone(),
        local_endpoints: endpoints,
    };
    (format!("bench/{name}"), vec![port])
}

fn all_services() -> Changes {
    Changes {
        services: (0..SERVICES).map(|i| service(i, 0)).collect(),
        queued_at: None,
    }
}

fn one_changed() -> Changes {
    Changes {
        services: vec![service(SERVICES / 2, 1)],
        queued_at: None,
    }
}

fn report(mode: &str, full: Duration, one: Duration) {
    println!(
        "kube-proxy {mode:<17} {SERVICES} services / {} endpoints: full sync {:>8.1} ms (target < 1000), one-service sync {:>6.1} ms (target < 50)",
        SERVICES * ENDPOINTS_PER_SERVICE,
        full.as_secs_f64() * 1e3,
        one.as_secs_f64() * 1e3
    );
}

async fn bench() -> anyhow::Result<()> {
    let cfg = Arc::new(
        KubeProxyConfiguration {
            cluster_cidr: "10.128.0.0/9".into(),
            ..Default::default()
        }
        .resolve()?,
    );

    // The inputs are built before each clock starts: only the sync is timed.
    let (all, one) = (all_services(), one_changed());
    let mut nft = NftProxier::new(cfg.clone(), vec![Family::V4]);
    let start = Instant::now();
    nft.sync(&all, true).await?;
    let full = start.elapsed();
    let start = Instant::now();
    nft.sync(&one, false).await?;
    report("nftables", full, start.elapsed());
    // The periodic resync rewrites the existing table in place.
    let start = Instant::now();
    nft.sync(
        &Changes {
            services: vec![],
            queued_at: None,
        },
        true,
    )
    .await?;
    println!(
        "kube-proxy nftables          periodic full resync of the existing table {:>8.1} ms",
        start.elapsed().as_secs_f64() * 1e3
    );

    for backend in [iptables::NFT, iptables::LEGACY] {
        let mut ipt = IptProxier::new(cfg.clone(), backend, vec![Family::V4]);
        let start = Instant::now();
        ipt.sync(&all, true).await?;
        let full = start.elapsed();
        let start = Instant::now();
        ipt.sync(&one, false).await?;
        report(
            &format!("iptables ({})", backend.name),
            full,
            start.elapsed(),
        );
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    if std::env::var_os(INNER).is_none() {
        let exe = std::env::current_exe()?;
        let status = Command::new("unshare")
            .arg("--net")
            .arg(exe)
            .env(INNER, "1")
            .status()?;
        anyhow::ensure!(
            status.success(),
            "the bench failed inside its network namespace"
        );
        return Ok(());
    }
    tokio::runtime::Runtime::new()?.block_on(bench())
}
