//! The iptables mode: upstream's chain layout (KUBE-SERVICES → KUBE-SVC-* / KUBE-EXT-* →
//! KUBE-SEP-*, KUBE-NODEPORTS, KUBE-MARK-MASQ, KUBE-POSTROUTING, and filter-table REJECTs for
//! services without endpoints), written with one `iptables-restore --noflush` per sync through
//! whichever backend (nft or legacy) the host already uses. IPv4 only.

use std::{
    collections::{BTreeSet, HashMap},
    fmt::Write as _,
    net::IpAddr,
    sync::Arc,
};

use crate::{
    config::ProxyConfig,
    exec,
    model::{Endpoint, ServicePort, ServicePortMap, ServicePortName},
    net::{self, Family},
    proxier::{self, ProxyError, SyncReport},
    tracker::Changes,
};

/// The iptables binaries of one backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backend {
    pub name: &'static str,
    pub iptables: &'static str,
    pub save: &'static str,
    pub restore: &'static str,
}

/// iptables over the nf_tables kernel API.
pub const NFT: Backend = Backend {
    name: "nft",
    iptables: "iptables-nft",
    save: "iptables-nft-save",
    restore: "iptables-nft-restore",
};
/// iptables over the legacy x_tables kernel API.
pub const LEGACY: Backend = Backend {
    name: "legacy",
    iptables: "iptables-legacy",
    save: "iptables-legacy-save",
    restore: "iptables-legacy-restore",
};

impl Backend {
    /// The backend the host uses: the one holding more rules already (as upstream's wrapper
    /// decides), else the one `iptables` itself names; None when neither works.
    pub async fn detect() -> Option<Backend> {
        let mut usable = Vec::new();
        for b in [NFT, LEGACY] {
            if let Ok(out) = exec::run(b.save, &[], None).await {
                if exec::works(b.iptables, &["-w", "-t", "nat", "-L", "-n"], None).await {
                    usable.push((b, out.lines().filter(|l| l.starts_with("-A")).count()));
                }
            }
        }
        let default = match exec::run("iptables", &["-V"], None).await {
            Ok(v) if v.contains("legacy") => LEGACY,
            _ => NFT,
        };
        usable.sort_by_key(|(b, n)| (std::cmp::Reverse(*n), *b != default));
        usable.first().map(|(b, _)| *b)
    }
}

/// The fixed chains kube-proxy owns (other KUBE- chains, such as kubelet's, are left alone).
const OWN_CHAINS: &[&str] = &[
    "KUBE-SERVICES",
    "KUBE-EXTERNAL-SERVICES",
    "KUBE-NODEPORTS",
    "KUBE-POSTROUTING",
    "KUBE-MARK-MASQ",
];

/// Prefixes of the per-service and per-endpoint chains.
const SERVICE_CHAIN_PREFIXES: &[&str] = &[
    "KUBE-SVC-",
    "KUBE-EXT-",
    "KUBE-SEP-",
    "KUBE-SVL-",
    "KUBE-FW-",
];

/// Jumps from the built-in chains into kube-proxy's chains: (table, chain, rule args).
const JUMPS: &[(&str, &str, &str, &str)] = &[
    (
        "nat",
        "PREROUTING",
        "KUBE-SERVICES",
        "kubernetes service portals",
    ),
    (
        "nat",
        "OUTPUT",
        "KUBE-SERVICES",
        "kubernetes service portals",
    ),
    (
        "nat",
        "POSTROUTING",
        "KUBE-POSTROUTING",
        "kubernetes postrouting rules",
    ),
    (
        "filter",
        "INPUT",
        "KUBE-EXTERNAL-SERVICES",
        "kubernetes externally-visible service portals",
    ),
    (
        "filter",
        "INPUT",
        "KUBE-SERVICES",
        "kubernetes service portals",
    ),
    (
        "filter",
        "FORWARD",
        "KUBE-SERVICES",
        "kubernetes service portals",
    ),
    (
        "filter",
        "OUTPUT",
        "KUBE-SERVICES",
        "kubernetes service portals",
    ),
];

fn jump_args<'a>(
    table: &'a str,
    chain: &'a str,
    target: &'a str,
    comment: &'a str,
) -> Vec<&'a str> {
    let mut args = vec!["-w", "-t", table, chain];
    if table == "filter" {
        args.extend(["-m", "conntrack", "--ctstate", "NEW"]);
    }
    args.extend(["-m", "comment", "--comment", comment, "-j", target]);
    args
}

/// One service port's share of the nat and filter tables.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Fragment {
    chains: Vec<(String, Vec<String>)>,
    nat_services: Vec<String>,
    nat_nodeports: Vec<String>,
    filter_services: Vec<String>,
    filter_external: Vec<String>,
}

fn render(sp: &ServicePort, cfg: &ProxyConfig) -> Fragment {
    let mut frag = Fragment::default();
    if !sp.has_family(Family::V4) {
        return frag;
    }
    let proto = sp.name.protocol.as_str();
    let id = sp.name.to_string();
    let key = format!("{id}/{proto}");
    let h = proxier::short_hash(&[&key]);
    let svc_chain = format!("KUBE-SVC-{h}");
    let ext_chain = format!("KUBE-EXT-{h}");
    let v4 = |e: &&Endpoint| e.ip.is_ipv4();
    let sep = |e: &Endpoint| {
        format!(
            "KUBE-SEP-{}",
            proxier::short_hash(&[&key, &e.ip.to_string(), &e.port.to_string()])
        )
    };
    let eps: BTreeSet<&Endpoint> = sp
        .cluster_endpoints
        .iter()
        .chain(&sp.external_endpoints)
        .filter(|e| e.ip.is_ipv4())
        .collect();
    for e in &eps {
        let chain = sep(e);
        let recent = match sp.affinity_timeout {
            Some(_) => format!("-m recent --name {chain} --mask 255.255.255.255 --rsource --set "),
            None => String::new(),
        };
        frag.chains.push((
            chain.clone(),
            vec![
                format!("-A {chain} -m comment --comment \"{id}\" -s {}/32 -j KUBE-MARK-MASQ", e.ip),
                format!(
                    "-A {chain} -m comment --comment \"{id}\" -p {proto} {recent}-m {proto} -j DNAT --to-destination {}:{}",
                    e.ip, e.port
                ),
            ],
        ));
    }
    let select = |chain: &str, targets: &[Endpoint]| -> Vec<String> {
        let targets: Vec<&Endpoint> = targets.iter().filter(v4).collect();
        let mut rules = Vec::new();
        if let Some(timeout) = sp.affinity_timeout {
            for e in &targets {
                let s = sep(e);
                rules.push(format!(
                    "-A {chain} -m comment --comment \"{id} -> {}:{}\" -m recent --name {s} --mask 255.255.255.255 --rsource --rcheck --seconds {timeout} --reap -j {s}",
                    e.ip, e.port
                ));
            }
        }
        let n = targets.len();
        if n == 0 {
            rules.push(format!("-A {chain} -j DROP"));
        }
        for (i, e) in targets.iter().enumerate() {
            let s = sep(e);
            if i + 1 == n {
                rules.push(format!(
                    "-A {chain} -m comment --comment \"{id} -> {}:{}\" -j {s}",
                    e.ip, e.port
                ));
            } else {
                rules.push(format!(
                    "-A {chain} -m comment --comment \"{id} -> {}:{}\" -m statistic --mode random --probability {:.10} -j {s}",
                    e.ip,
                    e.port,
                    1.0 / (n - i) as f64
                ));
            }
        }
        rules
    };
    let has = |list: &[Endpoint]| list.iter().any(|e| e.ip.is_ipv4());
    let cluster_ok = has(&sp.cluster_endpoints);
    let no_ep_target = |local_only: bool| {
        if local_only && !sp.endpoints.is_empty() {
            "DROP"
        } else {
            "REJECT"
        }
    };
    let cidrs: Vec<String> = cfg
        .cluster_cidrs
        .iter()
        .filter(|c| c.family() == Family::V4)
        .map(|c| c.to_string())
        .collect();
    for cip in sp.cluster_ips_of(Family::V4) {
        let m = format!(
            "-d {cip}/32 -p {proto} -m comment --comment \"{id} cluster IP\" -m {proto} --dport {}",
            sp.port
        );
        if cluster_ok {
            frag.nat_services
                .push(format!("-A KUBE-SERVICES {m} -j {svc_chain}"));
        } else {
            frag.filter_services.push(format!(
                "-A KUBE-SERVICES {m} -j {}",
                no_ep_target(sp.internal_policy_local)
            ));
        }
    }
    if cluster_ok {
        let mut rules = Vec::new();
        for cip in sp.cluster_ips_of(Family::V4) {
            let m = format!("-d {cip}/32 -p {proto} -m {proto} --dport {}", sp.port);
            if cfg.masquerade_all {
                rules.push(format!("-A {svc_chain} {m} -j KUBE-MARK-MASQ"));
            } else {
                for cidr in &cidrs {
                    rules.push(format!("-A {svc_chain} ! -s {cidr} {m} -j KUBE-MARK-MASQ"));
                }
            }
        }
        rules.extend(select(&svc_chain, &sp.cluster_endpoints));
        frag.chains.push((svc_chain.clone(), rules));
    }
    if sp.has_external() {
        let ext_ok = (cluster_ok || has(&sp.external_endpoints))
            && (sp.external_policy_local || has(&sp.external_endpoints));
        if ext_ok {
            let mut rules = Vec::new();
            if sp.external_policy_local {
                rules.push(format!(
                    "-A {ext_chain} -m addrtype --src-type LOCAL -j KUBE-MARK-MASQ"
                ));
                if cluster_ok {
                    rules.push(format!(
                        "-A {ext_chain} -m addrtype --src-type LOCAL -j {svc_chain}"
                    ));
                }
            } else {
                rules.push(format!("-A {ext_chain} -j KUBE-MARK-MASQ"));
            }
            rules.extend(select(&ext_chain, &sp.external_endpoints));
            frag.chains.push((ext_chain.clone(), rules));
        }
        for eip in sp.external_ips_of(Family::V4) {
            let m = format!("-d {eip}/32 -p {proto} -m comment --comment \"{id} external IP\" -m {proto} --dport {}", sp.port);
            if ext_ok {
                frag.nat_services
                    .push(format!("-A KUBE-SERVICES {m} -j {ext_chain}"));
            } else {
                frag.filter_external.push(format!(
                    "-A KUBE-EXTERNAL-SERVICES {m} -j {}",
                    no_ep_target(sp.external_policy_local)
                ));
            }
        }
        if let Some(np) = sp.node_port {
            let m = format!("-p {proto} -m comment --comment \"{id}\" -m {proto} --dport {np}");
            if ext_ok {
                frag.nat_nodeports
                    .push(format!("-A KUBE-NODEPORTS {m} -j {ext_chain}"));
            } else {
                frag.filter_external.push(format!(
                    "-A KUBE-EXTERNAL-SERVICES -m addrtype --dst-type LOCAL {m} -j {}",
                    no_ep_target(sp.external_policy_local)
                ));
            }
        }
    }
    frag
}

/// The iptables proxier.
pub struct IptProxier {
    cfg: Arc<ProxyConfig>,
    backend: Backend,
    ports: ServicePortMap,
    fragments: HashMap<ServicePortName, Fragment>,
    /// Per-service chains present in the nat table after the last sync.
    chains: BTreeSet<String>,
    synced_once: bool,
}

impl IptProxier {
    pub fn new(cfg: Arc<ProxyConfig>, backend: Backend) -> IptProxier {
        IptProxier {
            cfg,
            backend,
            ports: ServicePortMap::new(),
            fragments: HashMap::new(),
            chains: BTreeSet::new(),
            synced_once: false,
        }
    }

    pub fn ports(&self) -> &ServicePortMap {
        &self.ports
    }

    pub fn invalidate(&mut self) {
        self.synced_once = false;
    }

    async fn ensure_jumps(&self) -> Result<(), ProxyError> {
        let b = self.backend;
        for (table, chain) in [
            ("nat", "KUBE-SERVICES"),
            ("nat", "KUBE-POSTROUTING"),
            ("filter", "KUBE-SERVICES"),
            ("filter", "KUBE-EXTERNAL-SERVICES"),
        ] {
            if !exec::works(b.iptables, &["-w", "-t", table, "-n", "-L", chain], None).await {
                exec::run(b.iptables, &["-w", "-t", table, "-N", chain], None).await?;
            }
        }
        for (table, chain, target, comment) in JUMPS {
            let args = jump_args(table, chain, target, comment);
            let mut check = args.clone();
            check.insert(3, "-C");
            if !exec::works(b.iptables, &check, None).await {
                let mut insert = args.clone();
                insert.insert(3, "-I");
                exec::run(b.iptables, &insert, None).await?;
            }
        }
        Ok(())
    }

    /// Rewrites kube-proxy's chains: only changed services are re-rendered, but the restore
    /// input always covers every KUBE chain, as iptables-restore replaces whole chains.
    pub async fn sync(&mut self, changes: &Changes, full: bool) -> Result<SyncReport, ProxyError> {
        let changed = proxier::apply_changes(&mut self.ports, changes);
        let full = full || !self.synced_once;
        let mut rewritten = 0;
        // Per-service chains a partial sync rewrites: those of services that changed.
        let mut touched: BTreeSet<String> = BTreeSet::new();
        if full {
            self.ensure_jumps().await?;
            self.fragments = self
                .ports
                .iter()
                .map(|(n, sp)| (n.clone(), render(sp, &self.cfg)))
                .collect();
            rewritten = self.fragments.len();
            // Chains an earlier run left behind are swept as stale.
            let saved = exec::run(self.backend.save, &["-t", "nat"], None).await?;
            for line in saved.lines() {
                if let Some(chain) = line
                    .strip_prefix(':')
                    .and_then(|l| l.split_whitespace().next())
                {
                    if [
                        "KUBE-SVC-",
                        "KUBE-EXT-",
                        "KUBE-SEP-",
                        "KUBE-SVL-",
                        "KUBE-FW-",
                    ]
                    .iter()
                    .any(|p| chain.starts_with(p))
                    {
                        self.chains.insert(chain.to_string());
                    }
                }
            }
        } else {
            for c in &changed {
                let new = c.new.as_ref().map(|sp| render(sp, &self.cfg));
                let old = match &new {
                    Some(f) => self.fragments.insert(c.name.clone(), f.clone()),
                    None => self.fragments.remove(&c.name),
                };
                if old != new {
                    rewritten += 1;
                    for f in old.iter().chain(new.iter()) {
                        touched.extend(f.chains.iter().map(|(c, _)| c.clone()));
                    }
                }
            }
        }
        let node_ips = if self.cfg.node_port_cidrs.is_empty() {
            None
        } else {
            Some(net::node_addresses(&self.cfg.node_port_cidrs).await?)
        };
        let partial = (!full).then_some(&touched);
        let (input, chains, rules) = self.restore_input(node_ips.as_deref(), partial);
        exec::run(self.backend.restore, &["-w", "--noflush"], Some(&input)).await?;
        self.chains = chains;
        self.synced_once = true;
        Ok(SyncReport {
            full,
            rewritten,
            rules,
            stale_udp: crate::conntrack::stale_entries(&changed),
        })
    }

    /// The iptables-restore input. With `partial`, only the listed per-service chains are
    /// rewritten (chains not named in the input keep their rules under `--noflush`).
    fn restore_input(
        &self,
        node_ips: Option<&[IpAddr]>,
        partial: Option<&BTreeSet<String>>,
    ) -> (String, BTreeSet<String>, Vec<(&'static str, usize)>) {
        let write = |c: &String| partial.is_none_or(|t| t.contains(c));
        let mark = self.cfg.masquerade_mark;
        let mut frags: Vec<(&ServicePortName, &Fragment)> = self.fragments.iter().collect();
        frags.sort_by(|a, b| a.0.cmp(b.0));
        let live: BTreeSet<String> = frags
            .iter()
            .flat_map(|(_, f)| f.chains.iter().map(|(c, _)| c.clone()))
            .collect();
        let mut nat = String::from("*nat\n");
        for c in [
            "KUBE-SERVICES",
            "KUBE-NODEPORTS",
            "KUBE-POSTROUTING",
            "KUBE-MARK-MASQ",
        ] {
            let _ = writeln!(nat, ":{c} - [0:0]");
        }
        for c in live
            .iter()
            .filter(|c| write(c))
            .chain(self.chains.difference(&live))
        {
            let _ = writeln!(nat, ":{c} - [0:0]");
        }
        let _ = writeln!(
            nat,
            "-A KUBE-POSTROUTING -m mark ! --mark {mark:#x}/{mark:#x} -j RETURN"
        );
        let _ = writeln!(nat, "-A KUBE-POSTROUTING -j MARK --xor-mark {mark:#x}");
        let _ = writeln!(
            nat,
            "-A KUBE-POSTROUTING -m comment --comment \"kubernetes service traffic requiring SNAT\" -j MASQUERADE --random-fully"
        );
        let _ = writeln!(nat, "-A KUBE-MARK-MASQ -j MARK --or-mark {mark:#x}");
        let mut nat_rules = 4;
        let mut filter_rules = 0;
        let mut filter =
            String::from("*filter\n:KUBE-SERVICES - [0:0]\n:KUBE-EXTERNAL-SERVICES - [0:0]\n");
        for (_, f) in &frags {
            for line in f.nat_services.iter() {
                let _ = writeln!(nat, "{line}");
            }
            for line in f.filter_services.iter().chain(&f.filter_external) {
                let _ = writeln!(filter, "{line}");
            }
            nat_rules += f.nat_services.len();
            filter_rules += f.filter_services.len() + f.filter_external.len();
        }
        match node_ips {
            None => {
                let _ = writeln!(
                    nat,
                    "-A KUBE-SERVICES -m comment --comment \"kubernetes service nodeports; NOTE: this must be the last rule in this chain\" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS"
                );
            }
            Some(ips) => {
                for ip in ips.iter().filter(|i| i.is_ipv4()) {
                    let _ = writeln!(
                        nat,
                        "-A KUBE-SERVICES -d {ip}/32 -m comment --comment \"kubernetes service nodeports; NOTE: this must be the last rule in this chain\" -j KUBE-NODEPORTS"
                    );
                }
            }
        }
        for (_, f) in &frags {
            for line in &f.nat_nodeports {
                let _ = writeln!(nat, "{line}");
            }
            nat_rules += f.nat_nodeports.len();
            for (chain, chain_rules) in &f.chains {
                if write(chain) {
                    for line in chain_rules {
                        let _ = writeln!(nat, "{line}");
                    }
                }
                nat_rules += chain_rules.len();
            }
        }
        for stale in self.chains.difference(&live) {
            let _ = writeln!(nat, "-X {stale}");
        }
        nat.push_str("COMMIT\n");
        filter.push_str("COMMIT\n");
        let rules = vec![("nat", nat_rules), ("filter", filter_rules)];
        (format!("{filter}{nat}"), live, rules)
    }
}

/// Removes every KUBE chain and jump from both backends' nat and filter tables.
pub async fn cleanup() -> Result<(), ProxyError> {
    for b in [NFT, LEGACY] {
        for (table, chain, target, comment) in JUMPS {
            let mut args = jump_args(table, chain, target, comment);
            args.insert(3, "-D");
            while exec::works(b.iptables, &args, None).await {}
        }
        for table in ["nat", "filter"] {
            let Ok(saved) = exec::run(b.save, &["-t", table], None).await else {
                continue;
            };
            let chains: Vec<&str> = saved
                .lines()
                .filter_map(|l| l.strip_prefix(':'))
                .filter_map(|l| l.split_whitespace().next())
                .filter(|c| {
                    OWN_CHAINS.contains(c)
                        || SERVICE_CHAIN_PREFIXES.iter().any(|p| c.starts_with(p))
                })
                .collect();
            if chains.is_empty() {
                continue;
            }
            let mut input = format!("*{table}\n");
            for c in &chains {
                let _ = writeln!(input, ":{c} - [0:0]");
            }
            for c in &chains {
                let _ = writeln!(input, "-X {c}");
            }
            input.push_str("COMMIT\n");
            exec::run(b.restore, &["-w", "--noflush"], Some(&input)).await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Protocol;

    #[test]
    fn renders_upstream_chain_layout() {
        let cfg = {
            let c: crate::config::KubeProxyConfiguration = Default::default();
            c.resolve().unwrap()
        };
        let ep = |ip: &str| Endpoint {
            ip: ip.parse().unwrap(),
            port: 8080,
            ready: true,
            serving: true,
            terminating: false,
            node_name: None,
        };
        let eps = vec![ep("10.244.0.11"), ep("10.244.0.12")];
        let sp = ServicePort {
            name: ServicePortName {
                namespace: "ns".into(),
                name: "web".into(),
                port_name: String::new(),
                protocol: Protocol::Tcp,
            },
            cluster_ips: vec!["10.0.0.10".parse().unwrap()],
            port: 80,
            node_port: Some(30080),
            external_ips: vec![],
            load_balancer_ips: vec![],
            affinity_timeout: None,
            external_policy_local: false,
            internal_policy_local: false,
            health_check_node_port: None,
            endpoints: eps.clone(),
            cluster_endpoints: eps.clone(),
            external_endpoints: eps.clone(),
            local_endpoints: vec![],
        };
        let f = render(&sp, &cfg);
        assert!(f.nat_services[0].starts_with("-A KUBE-SERVICES -d 10.0.0.10/32 -p tcp"));
        assert!(f.nat_nodeports[0].contains("--dport 30080 -j KUBE-EXT-"));
        let svc = f
            .chains
            .iter()
            .find(|(c, _)| c.starts_with("KUBE-SVC-"))
            .unwrap();
        assert!(svc.1[0].contains("--probability 0.5000000000"));
        assert_eq!(
            f.chains
                .iter()
                .filter(|(c, _)| c.starts_with("KUBE-SEP-"))
                .count(),
            2
        );
        assert!(f.chains.iter().all(|(c, _)| c.len() <= 28));
        let mut none = sp.clone();
        none.cluster_endpoints.clear();
        none.external_endpoints.clear();
        none.endpoints.clear();
        let f = render(&none, &cfg);
        assert!(f.filter_services[0].ends_with("-j REJECT"));
        assert!(f.filter_external[0].contains("--dport 30080 -j REJECT"));
    }
}
