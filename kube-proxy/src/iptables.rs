//! The iptables mode: upstream's chain layout (KUBE-SERVICES → KUBE-SVC-* / KUBE-EXT-* →
//! KUBE-SEP-*, KUBE-NODEPORTS, KUBE-MARK-MASQ, KUBE-POSTROUTING, and filter-table REJECTs for
//! services without endpoints), written with one `iptables-restore --noflush` per sync through
//! whichever backend (nft or legacy) the host already uses. IPv6 gets the same layout through
//! the backend's ip6tables tools, each family's rules holding only that family's addresses.

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

/// The binaries that program one IP family on one backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tools {
    pub iptables: &'static str,
    pub save: &'static str,
    pub restore: &'static str,
}

/// The iptables and ip6tables binaries of one backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backend {
    pub name: &'static str,
    pub v4: Tools,
    pub v6: Tools,
}

/// iptables over the nf_tables kernel API.
pub const NFT: Backend = Backend {
    name: "nft",
    v4: Tools {
        iptables: "iptables-nft",
        save: "iptables-nft-save",
        restore: "iptables-nft-restore",
    },
    v6: Tools {
        iptables: "ip6tables-nft",
        save: "ip6tables-nft-save",
        restore: "ip6tables-nft-restore",
    },
};
/// iptables over the legacy x_tables kernel API.
pub const LEGACY: Backend = Backend {
    name: "legacy",
    v4: Tools {
        iptables: "iptables-legacy",
        save: "iptables-legacy-save",
        restore: "iptables-legacy-restore",
    },
    v6: Tools {
        iptables: "ip6tables-legacy",
        save: "ip6tables-legacy-save",
        restore: "ip6tables-legacy-restore",
    },
};

impl Backend {
    pub fn tools(&self, f: Family) -> Tools {
        match f {
            Family::V4 => self.v4,
            Family::V6 => self.v6,
        }
    }

    /// The families of `host` whose nat table this backend can program (IPv6 needs the
    /// ip6tables tools and the kernel's ip6 nat support).
    pub async fn families(&self, host: &[Family]) -> Vec<Family> {
        let mut out = Vec::new();
        for &f in host {
            let tools = self.tools(f);
            if exec::works(tools.iptables, &["-w", "-t", "nat", "-L", "-n"], None).await {
                out.push(f);
            } else {
                tracing::warn!(
                    family = ?f,
                    tool = tools.iptables,
                    "this family's nat table cannot be programmed; its services are not proxied"
                );
            }
        }
        out
    }

    /// The backend the host uses: the one holding more rules already (as upstream's wrapper
    /// decides), else the one `iptables` itself names; None when neither works.
    pub async fn detect() -> Option<Backend> {
        let mut usable = Vec::new();
        for b in [NFT, LEGACY] {
            if let Ok(out) = exec::run(b.v4.save, &[], None).await {
                if exec::works(b.v4.iptables, &["-w", "-t", "nat", "-L", "-n"], None).await {
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
    "KUBE-PROXY-FIREWALL",
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
        "INPUT",
        "KUBE-PROXY-FIREWALL",
        "kube-proxy firewall rules",
    ),
    (
        "filter",
        "FORWARD",
        "KUBE-PROXY-FIREWALL",
        "kube-proxy firewall rules",
    ),
    (
        "filter",
        "OUTPUT",
        "KUBE-PROXY-FIREWALL",
        "kube-proxy firewall rules",
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
    /// Lines in KUBE-PROXY-FIREWALL, and the filter-table KUBE-FW-* chains they jump to.
    filter_firewall: Vec<String>,
    filter_chains: Vec<(String, Vec<String>)>,
}

/// The prefix length of one address, and the `recent` mask that matches it whole.
fn host_bits(f: Family) -> (u8, &'static str) {
    match f {
        Family::V4 => (32, "255.255.255.255"),
        Family::V6 => (128, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
    }
}

/// One service port's rules in the tables of family `f` (nothing when it has no address there).
fn render(sp: &ServicePort, cfg: &ProxyConfig, f: Family) -> Fragment {
    let mut frag = Fragment::default();
    if !sp.has_family(f) {
        return frag;
    }
    let (host, mask) = host_bits(f);
    let proto = sp.name.protocol.as_str();
    let id = sp.name.to_string();
    let key = format!("{id}/{proto}");
    let h = proxier::short_hash(&[&key]);
    let svc_chain = format!("KUBE-SVC-{h}");
    let ext_chain = format!("KUBE-EXT-{h}");
    let in_family = |e: &&Endpoint| Family::of(&e.ip) == f;
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
        .filter(in_family)
        .collect();
    for e in &eps {
        let chain = sep(e);
        let recent = match sp.affinity_timeout {
            Some(_) => format!("-m recent --name {chain} --mask {mask} --rsource --set "),
            None => String::new(),
        };
        frag.chains.push((
            chain.clone(),
            vec![
                format!("-A {chain} -m comment --comment \"{id}\" -s {}/{host} -j KUBE-MARK-MASQ", e.ip),
                format!(
                    "-A {chain} -m comment --comment \"{id}\" -p {proto} {recent}-m {proto} -j DNAT --to-destination {}",
                    std::net::SocketAddr::new(e.ip, e.port)
                ),
            ],
        ));
    }
    let select = |chain: &str, targets: &[Endpoint]| -> Vec<String> {
        let targets: Vec<&Endpoint> = targets.iter().filter(in_family).collect();
        let mut rules = Vec::new();
        if let Some(timeout) = sp.affinity_timeout {
            for e in &targets {
                let s = sep(e);
                rules.push(format!(
                    "-A {chain} -m comment --comment \"{id} -> {}:{}\" -m recent --name {s} --mask {mask} --rsource --rcheck --seconds {timeout} --reap -j {s}",
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
    let has = |list: &[Endpoint]| list.iter().any(|e| Family::of(&e.ip) == f);
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
        .filter(|c| c.family() == f)
        .map(|c| c.to_string())
        .collect();
    for cip in sp.cluster_ips_of(f) {
        let m = format!(
            "-d {cip}/{host} -p {proto} -m comment --comment \"{id} cluster IP\" -m {proto} --dport {}",
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
        for cip in sp.cluster_ips_of(f) {
            let m = format!("-d {cip}/{host} -p {proto} -m {proto} --dport {}", sp.port);
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
        for eip in sp.external_ips_of(f) {
            let m = format!("-d {eip}/{host} -p {proto} -m comment --comment \"{id} external IP\" -m {proto} --dport {}", sp.port);
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
        // loadBalancerSourceRanges, checked in the filter table on the original destination
        // (DNAT has already happened there).
        let lb_ips: Vec<&IpAddr> = sp
            .load_balancer_ips
            .iter()
            .filter(|i| Family::of(i) == f)
            .collect();
        if !sp.source_ranges.is_empty() && !lb_ips.is_empty() {
            let fw_chain = format!("KUBE-FW-{h}");
            let mut rules: Vec<String> = sp
                .source_ranges
                .iter()
                .filter(|r| r.family() == f)
                .map(|r| format!("-A {fw_chain} -s {r} -j RETURN"))
                .collect();
            rules.push(format!(
                "-A {fw_chain} -m comment --comment \"{id} traffic not allowed by loadBalancerSourceRanges\" -j DROP"
            ));
            frag.filter_chains.push((fw_chain.clone(), rules));
            for lb in lb_ips {
                frag.filter_firewall.push(format!(
                    "-A KUBE-PROXY-FIREWALL -p {proto} -m conntrack --ctorigdst {lb}/{host} --ctorigdstport {} -m comment --comment \"{id} load balancer IP\" -j {fw_chain}",
                    sp.port
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

/// One family's share of the iptables proxier: its tools, and what the last sync wrote there.
struct FamilyTables {
    family: Family,
    tools: Tools,
    fragments: HashMap<ServicePortName, Fragment>,
    /// Per-service chains present in the nat table after the last sync.
    chains: BTreeSet<String>,
    /// Per-service chains present in the filter table after the last sync.
    filter_chains: BTreeSet<String>,
}

/// The iptables proxier.
pub struct IptProxier {
    cfg: Arc<ProxyConfig>,
    ports: ServicePortMap,
    tables: Vec<FamilyTables>,
    /// The node-port addresses the last sync wrote (they end KUBE-SERVICES).
    node_ips: Option<Vec<IpAddr>>,
    synced_once: bool,
}

impl IptProxier {
    /// A proxier writing the tables of `families` through `backend`.
    pub fn new(cfg: Arc<ProxyConfig>, backend: Backend, families: Vec<Family>) -> IptProxier {
        IptProxier {
            cfg,
            ports: ServicePortMap::new(),
            tables: families
                .into_iter()
                .map(|family| FamilyTables {
                    family,
                    tools: backend.tools(family),
                    fragments: HashMap::new(),
                    chains: BTreeSet::new(),
                    filter_chains: BTreeSet::new(),
                })
                .collect(),
            node_ips: None,
            synced_once: false,
        }
    }

    pub fn ports(&self) -> &ServicePortMap {
        &self.ports
    }

    pub fn invalidate(&mut self) {
        self.synced_once = false;
    }

    /// Rewrites kube-proxy's chains in every family. A full sync writes every KUBE chain; a
    /// partial one only the chains of services that changed, plus their own lines in the
    /// shared chains.
    pub async fn sync(&mut self, changes: &Changes, full: bool) -> Result<SyncReport, ProxyError> {
        let changed = proxier::apply_changes(&mut self.ports, changes);
        let node_ips = if self.cfg.node_port_cidrs.is_empty() {
            None
        } else {
            Some(net::node_addresses(&self.cfg.node_port_cidrs).await?)
        };
        let full = full || !self.synced_once || node_ips != self.node_ips;
        // Until every restore succeeds, nothing written can be trusted: a failure means a full
        // sync next time.
        self.synced_once = false;
        let mut rewritten = 0;
        for t in &mut self.tables {
            let input = if full {
                t.ensure_jumps().await?;
                t.fragments = self
                    .ports
                    .iter()
                    .map(|(n, sp)| (n.clone(), render(sp, &self.cfg, t.family)))
                    .collect();
                rewritten = rewritten.max(t.fragments.len());
                t.sweep_known_chains().await?;
                let (input, chains, filter_chains) =
                    t.restore_input(&self.cfg, node_ips.as_deref());
                t.chains = chains;
                t.filter_chains = filter_chains;
                input
            } else {
                let mut deltas = Vec::new();
                for c in &changed {
                    let new = c
                        .current(&self.ports)
                        .map(|sp| render(sp, &self.cfg, t.family));
                    let old = match &new {
                        Some(f) => t.fragments.insert(c.name.clone(), f.clone()),
                        None => t.fragments.remove(&c.name),
                    };
                    if old != new {
                        deltas.push((old.unwrap_or_default(), new.unwrap_or_default()));
                    }
                }
                rewritten += deltas.len();
                t.partial_input(&deltas)
            };
            if !input.is_empty() {
                exec::run(t.tools.restore, &["-w", "--noflush"], Some(&input)).await?;
            }
        }
        self.node_ips = node_ips;
        self.synced_once = true;
        Ok(SyncReport {
            full,
            rewritten,
            rules: self.rule_counts(),
            stale_udp: crate::conntrack::stale_entries(&changed, &self.ports),
        })
    }

    /// Rules per table (both families together), as the metrics report them.
    fn rule_counts(&self) -> Vec<(&'static str, usize)> {
        let (mut nat, mut filter) = (0, 0);
        for t in &self.tables {
            nat += 4;
            for f in t.fragments.values() {
                nat += f.nat_services.len()
                    + f.nat_nodeports.len()
                    + f.chains.iter().map(|(_, r)| r.len()).sum::<usize>();
                filter += f.filter_services.len()
                    + f.filter_external.len()
                    + f.filter_firewall.len()
                    + f.filter_chains.iter().map(|(_, r)| r.len()).sum::<usize>();
            }
        }
        vec![("nat", nat), ("filter", filter)]
    }
}

impl FamilyTables {
    async fn ensure_jumps(&self) -> Result<(), ProxyError> {
        let ipt = self.tools.iptables;
        for (table, chain) in [
            ("nat", "KUBE-SERVICES"),
            ("nat", "KUBE-POSTROUTING"),
            ("filter", "KUBE-SERVICES"),
            ("filter", "KUBE-EXTERNAL-SERVICES"),
            ("filter", "KUBE-PROXY-FIREWALL"),
        ] {
            if !exec::works(ipt, &["-w", "-t", table, "-n", "-L", chain], None).await {
                exec::run(ipt, &["-w", "-t", table, "-N", chain], None).await?;
            }
        }
        for (table, chain, target, comment) in JUMPS {
            let args = jump_args(table, chain, target, comment);
            let mut check = args.clone();
            check.insert(3, "-C");
            if !exec::works(ipt, &check, None).await {
                let mut insert = args.clone();
                insert.insert(3, "-I");
                exec::run(ipt, &insert, None).await?;
            }
        }
        Ok(())
    }

    /// Adds the per-service chains already in the tables (an earlier run's) to the known ones,
    /// so a full sync sweeps those it no longer needs.
    async fn sweep_known_chains(&mut self) -> Result<(), ProxyError> {
        for (table, known) in [
            ("nat", &mut self.chains),
            ("filter", &mut self.filter_chains),
        ] {
            let saved = exec::run(self.tools.save, &["-t", table], None).await?;
            for line in saved.lines() {
                if let Some(chain) = line
                    .strip_prefix(':')
                    .and_then(|l| l.split_whitespace().next())
                {
                    if SERVICE_CHAIN_PREFIXES.iter().any(|p| chain.starts_with(p)) {
                        known.insert(chain.to_string());
                    }
                }
            }
        }
        Ok(())
    }
    /// The input of a partial sync: the changed services' own chains are rewritten, and their
    /// lines in the shared chains (KUBE-SERVICES, KUBE-NODEPORTS and the filter chains) are
    /// deleted and inserted one by one rather than rewriting those chains whole, which alone
    /// costs iptables-nft-restore about a second at 10 000 services. Inserting at the top keeps
    /// the node-port jump last in KUBE-SERVICES.
    fn partial_input(&mut self, deltas: &[(Fragment, Fragment)]) -> String {
        let mut declare = BTreeSet::new();
        let mut stale = BTreeSet::new();
        let (mut filter_declare, mut filter_stale) = (BTreeSet::new(), BTreeSet::new());
        let mut filter_chains = String::new();
        let (mut nat_del, mut nat_chains, mut nat_ins) =
            (String::new(), String::new(), String::new());
        let (mut filter_del, mut filter_ins) = (String::new(), String::new());
        for (old, new) in deltas {
            for (chain, rules) in &new.chains {
                declare.insert(chain.clone());
                self.chains.insert(chain.clone());
                for line in rules {
                    let _ = writeln!(nat_chains, "{line}");
                }
            }
            for (chain, _) in &old.chains {
                if !new.chains.iter().any(|(c, _)| c == chain) {
                    stale.insert(chain.clone());
                    self.chains.remove(chain);
                }
            }
            for (chain, rules) in &new.filter_chains {
                filter_declare.insert(chain.clone());
                self.filter_chains.insert(chain.clone());
                for line in rules {
                    let _ = writeln!(filter_chains, "{line}");
                }
            }
            for (chain, _) in &old.filter_chains {
                if !new.filter_chains.iter().any(|(c, _)| c == chain) {
                    filter_stale.insert(chain.clone());
                    self.filter_chains.remove(chain);
                }
            }
            let shared = |f: &Fragment| -> [Vec<String>; 2] {
                [
                    f.nat_services
                        .iter()
                        .chain(&f.nat_nodeports)
                        .cloned()
                        .collect(),
                    f.filter_services
                        .iter()
                        .chain(&f.filter_external)
                        .chain(&f.filter_firewall)
                        .cloned()
                        .collect(),
                ]
            };
            let ([old_nat, old_filter], [new_nat, new_filter]) = (shared(old), shared(new));
            for (olds, news, del, ins) in [
                (&old_nat, &new_nat, &mut nat_del, &mut nat_ins),
                (&old_filter, &new_filter, &mut filter_del, &mut filter_ins),
            ] {
                for line in olds.iter().filter(|l| !news.contains(l)) {
                    let _ = writeln!(del, "{}", retarget(line, false));
                }
                for line in news.iter().filter(|l| !olds.contains(l)) {
                    let _ = writeln!(ins, "{}", retarget(line, true));
                }
            }
        }
        if declare.is_empty()
            && stale.is_empty()
            && filter_declare.is_empty()
            && filter_stale.is_empty()
            && nat_del.is_empty()
            && nat_ins.is_empty()
            && filter_del.is_empty()
            && filter_ins.is_empty()
        {
            return String::new();
        }
        let mut input = String::from("*filter\n");
        for c in filter_declare.iter().chain(&filter_stale) {
            let _ = writeln!(input, ":{c} - [0:0]");
        }
        input.push_str(&filter_del);
        input.push_str(&filter_chains);
        input.push_str(&filter_ins);
        for c in &filter_stale {
            let _ = writeln!(input, "-X {c}");
        }
        input.push_str("COMMIT\n*nat\n");
        for c in declare.iter().chain(&stale) {
            let _ = writeln!(input, ":{c} - [0:0]");
        }
        input.push_str(&nat_del);
        input.push_str(&nat_chains);
        input.push_str(&nat_ins);
        for c in &stale {
            let _ = writeln!(input, "-X {c}");
        }
        input.push_str("COMMIT\n");
        input
    }

    /// The iptables-restore input of a full sync: every KUBE chain, rewritten. Returns it with
    /// the per-service chains now in the nat and filter tables.
    fn restore_input(
        &self,
        cfg: &ProxyConfig,
        node_ips: Option<&[IpAddr]>,
    ) -> (String, BTreeSet<String>, BTreeSet<String>) {
        let mark = cfg.masquerade_mark;
        let (host, _) = host_bits(self.family);
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
        // Declared in descending name order: iptables-nft keeps its chain cache sorted by name
        // and inserts each declared chain by walking that list from the front, so ascending
        // declarations cost it a walk over every chain already declared (a third of the full
        // restore's time at 10 000 services), descending ones almost nothing.
        let mut declare: Vec<&String> = live.iter().chain(self.chains.difference(&live)).collect();
        declare.sort_unstable_by(|a, b| b.cmp(a));
        for c in declare {
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
        let filter_live: BTreeSet<String> = frags
            .iter()
            .flat_map(|(_, f)| f.filter_chains.iter().map(|(c, _)| c.clone()))
            .collect();
        let mut filter = String::from(
            "*filter\n:KUBE-SERVICES - [0:0]\n:KUBE-EXTERNAL-SERVICES - [0:0]\n:KUBE-PROXY-FIREWALL - [0:0]\n",
        );
        let mut declare: Vec<&String> = filter_live
            .iter()
            .chain(self.filter_chains.difference(&filter_live))
            .collect();
        declare.sort_unstable_by(|a, b| b.cmp(a));
        for c in declare {
            let _ = writeln!(filter, ":{c} - [0:0]");
        }
        for (_, f) in &frags {
            for line in f.nat_services.iter() {
                let _ = writeln!(nat, "{line}");
            }
            for line in f
                .filter_services
                .iter()
                .chain(&f.filter_external)
                .chain(&f.filter_firewall)
                .chain(f.filter_chains.iter().flat_map(|(_, r)| r))
            {
                let _ = writeln!(filter, "{line}");
            }
        }
        match node_ips {
            None => {
                let _ = writeln!(
                    nat,
                    "-A KUBE-SERVICES -m comment --comment \"kubernetes service nodeports; NOTE: this must be the last rule in this chain\" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS"
                );
            }
            Some(ips) => {
                for ip in ips.iter().filter(|i| Family::of(i) == self.family) {
                    let _ = writeln!(
                        nat,
                        "-A KUBE-SERVICES -d {ip}/{host} -m comment --comment \"kubernetes service nodeports; NOTE: this must be the last rule in this chain\" -j KUBE-NODEPORTS"
                    );
                }
            }
        }
        for (_, f) in &frags {
            for line in &f.nat_nodeports {
                let _ = writeln!(nat, "{line}");
            }
            for (_, chain_rules) in &f.chains {
                for line in chain_rules {
                    let _ = writeln!(nat, "{line}");
                }
            }
        }
        for stale in self.chains.difference(&live) {
            let _ = writeln!(nat, "-X {stale}");
        }
        for stale in self.filter_chains.difference(&filter_live) {
            let _ = writeln!(filter, "-X {stale}");
        }
        nat.push_str("COMMIT\n");
        filter.push_str("COMMIT\n");
        (format!("{filter}{nat}"), live, filter_live)
    }
}

/// Turns an `-A CHAIN spec` line into `-D CHAIN spec` or (`insert`) `-I CHAIN 1 spec`.
fn retarget(line: &str, insert: bool) -> String {
    let rest = line.strip_prefix("-A ").unwrap_or(line);
    let (chain, spec) = rest.split_once(' ').unwrap_or((rest, ""));
    if insert {
        format!("-I {chain} 1 {spec}")
    } else {
        format!("-D {chain} {spec}")
    }
}

/// Removes every KUBE chain and jump from both backends' nat and filter tables, in both families.
pub async fn cleanup() -> Result<(), ProxyError> {
    for b in [NFT.v4, NFT.v6, LEGACY.v4, LEGACY.v6] {
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
            source_ranges: vec![],
            endpoints: eps.clone(),
            cluster_endpoints: eps.clone(),
            external_endpoints: eps.clone(),
            local_endpoints: vec![],
        };
        let f = render(&sp, &cfg, Family::V4);
        assert!(render(&sp, &cfg, Family::V6) == Fragment::default());
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
        let f = render(&none, &cfg, Family::V4);
        assert!(f.filter_services[0].ends_with("-j REJECT"));
        assert!(f.filter_external[0].contains("--dport 30080 -j REJECT"));

        // A partial sync edits the shared chains line by line and leaves them undeclared.
        let mut proxier = IptProxier::new(Arc::new(cfg.clone()), NFT, vec![Family::V4]);
        let with_eps = render(&sp, &cfg, Family::V4);
        let input = proxier.tables[0].partial_input(&[(with_eps.clone(), f.clone())]);
        assert!(!input.contains(":KUBE-SERVICES"), "{input}");
        assert!(!input.contains(":KUBE-NODEPORTS"), "{input}");
        assert!(
            input.contains("-D KUBE-SERVICES -d 10.0.0.10/32 -p tcp"),
            "{input}"
        );
        assert!(
            input.contains("-I KUBE-SERVICES 1 -d 10.0.0.10/32 -p tcp"),
            "{input}"
        );
        assert!(
            input.contains("-I KUBE-EXTERNAL-SERVICES 1 -m addrtype"),
            "{input}"
        );
        let sep = with_eps
            .chains
            .iter()
            .find(|(c, _)| c.starts_with("KUBE-SEP-"))
            .map(|(c, _)| c.clone())
            .unwrap();
        let (declared, removed) = (
            input.find(&format!(":{sep} ")).unwrap(),
            input.find(&format!("-X {sep}")).unwrap(),
        );
        let unhooked = input.find("-D KUBE-NODEPORTS").unwrap();
        assert!(declared < unhooked && unhooked < removed, "{input}");
        assert!(proxier.tables[0]
            .partial_input(&[(f.clone(), f)])
            .is_empty());

        // A full sync declares the service chains after the shared ones, in descending name
        // order (cheap for iptables-nft's name-sorted caches), before any rule.
        proxier.tables[0]
            .fragments
            .insert(sp.name.clone(), with_eps.clone());
        let (full, chains, _) = proxier.tables[0].restore_input(&cfg, None);
        let nat = &full[full.find("*nat").unwrap()..];
        let declared: Vec<&str> = nat
            .lines()
            .filter_map(|l| l.strip_prefix(':'))
            .filter_map(|l| l.split_whitespace().next())
            .skip(4)
            .collect();
        let mut expected: Vec<&str> = chains.iter().map(String::as_str).collect();
        expected.reverse();
        assert_eq!(declared, expected, "{nat}");
        assert!(
            declared.len() == 4,
            "SVC, EXT and two SEP chains: {declared:?}"
        );
        let last_declaration = nat.rfind("\n:").unwrap();
        assert!(last_declaration < nat.find("\n-A ").unwrap(), "{nat}");

        // An IPv6 service port is written only to the ip6tables side, with /128 matches and
        // bracketed DNAT targets.
        let v6 = |ip: &str| Endpoint {
            ip: ip.parse().unwrap(),
            ..eps[0].clone()
        };
        let mut sp6 = sp.clone();
        sp6.cluster_ips = vec!["fd00:96::10".parse().unwrap()];
        sp6.affinity_timeout = Some(60);
        sp6.endpoints = vec![v6("fd00:244::11")];
        sp6.cluster_endpoints = sp6.endpoints.clone();
        sp6.external_endpoints = sp6.endpoints.clone();
        assert!(render(&sp6, &cfg, Family::V4) == Fragment::default());
        let f6 = render(&sp6, &cfg, Family::V6);
        assert!(f6.nat_services[0].starts_with("-A KUBE-SERVICES -d fd00:96::10/128 -p tcp"));
        let rules: Vec<&String> = f6.chains.iter().flat_map(|(_, r)| r).collect();
        assert!(
            rules
                .iter()
                .any(|r| r.contains("--to-destination [fd00:244::11]:8080")),
            "{rules:?}"
        );
        assert!(rules.iter().any(|r| r.contains("-s fd00:244::11/128")));
        assert!(rules
            .iter()
            .any(|r| r.contains("--mask ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")));
    }
}
