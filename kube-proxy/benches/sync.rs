//! Sync-time figures for `make bench`: a full sync and a one-service incremental sync with
//! 10 000 services and 50 000 endpoints, in nftables and iptables modes (targets: full under
//! 1 s, one-service change under 50 ms), with IPv4 services; and the same in nftables mode with
//! IPv6 services (the `ip6` table).
//!
//! The rules are written into a private network namespace: the bench re-executes itself under
//! `unshare --net` (root required), so the host's own packet filter is never touched.

use std::{
    net::{Ipv4Addr, Ipv6Addr},
    process::Command,
    sync::Arc,
    time::{Duration, Instant},
};

use kube_proxy::{
    config::KubeProxyConfiguration,
    iptables::{self, IptProxier},
    model::{Endpoint, Protocol, ServicePort, ServicePortName},
    net::Family,
    nftables::{self, NftProxier},
    tracker::Changes,
};

const SERVICES: u32 = 10_000;
const ENDPOINTS_PER_SERVICE: u32 = 5;
const INNER: &str = "KUBE_PROXY_BENCH_IN_NETNS";

/// Service `i` of `family`: cluster IP in 10.96.0.0/16 or fd00:96::/112, endpoints in the
/// cluster CIDR; `generation` shifts its endpoints by one address.
fn service(i: u32, generation: u32, family: Family) -> (String, Vec<ServicePort>) {
    let endpoints: Vec<Endpoint> = (0..ENDPOINTS_PER_SERVICE)
        .map(|e| {
            let n = i * ENDPOINTS_PER_SERVICE + e + generation;
            Endpoint {
                ip: match family {
                    Family::V4 => {
                        Ipv4Addr::new(10, 128 + (n >> 16) as u8, (n >> 8) as u8, n as u8).into()
                    }
                    Family::V6 => {
                        Ipv6Addr::new(0xfd00, 0x128, 0, 0, 0, 0, (n >> 16) as u16, n as u16).into()
                    }
                },
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
        cluster_ips: vec![match family {
            Family::V4 => Ipv4Addr::new(10, 96, (i >> 8) as u8, i as u8).into(),
            Family::V6 => Ipv6Addr::new(0xfd00, 0x96, 0, 0, 0, 0, 0, i as u16).into(),
        }],
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

fn all_services(family: Family) -> Changes {
    Changes {
        services: (0..SERVICES).map(|i| service(i, 0, family)).collect(),
        queued_at: None,
    }
}

fn one_changed(family: Family) -> Changes {
    Changes {
        services: vec![service(SERVICES / 2, 1, family)],
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
            cluster_cidr: "10.128.0.0/9,fd00:128::/64".into(),
            ..Default::default()
        }
        .resolve()?,
    );

    // The inputs are built before each clock starts: only the sync is timed.
    let (all, one) = (all_services(Family::V4), one_changed(Family::V4));
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

    let (all6, one6) = (all_services(Family::V6), one_changed(Family::V6));
    let mut nft6 = NftProxier::new(cfg.clone(), vec![Family::V6]);
    let start = Instant::now();
    nft6.sync(&all6, true).await?;
    let full = start.elapsed();
    let start = Instant::now();
    nft6.sync(&one6, false).await?;
    report("nftables (IPv6)", full, start.elapsed());
    drop((all6, one6, nft6));
    // The iptables modes start from a namespace without kube-proxy's nftables tables.
    nftables::cleanup().await?;

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
