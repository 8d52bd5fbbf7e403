//! The nftables mode: one `kube-proxy` table per IP family, owned by kube-proxy. Verdict maps
//! send service IP:port (and node ports) to per-service chains, which pick an endpoint at random
//! with `numgen`; services without endpoints are rejected from filter hooks. Each sync is one
//! atomic `nft -f -` transaction; after the first full sync only changed services are rewritten.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
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

/// The table name upstream uses in both families.
pub const TABLE: &str = "kube-proxy";

const SERVICE_IPS: &str = "service-ips";
const SERVICE_NODEPORTS: &str = "service-nodeports";
const NO_ENDPOINT_SERVICES: &str = "no-endpoint-services";
const NO_ENDPOINT_NODEPORTS: &str = "no-endpoint-nodeports";
const NODEPORT_IPS: &str = "nodeport-ips";
const CLUSTER_CIDRS: &str = "cluster-cidrs";
const HAIRPIN: &str = "hairpin-endpoints";
const MARK_MASQ: &str = "mark-for-masquerade";
const REJECT_CHAIN: &str = "reject-chain";

fn fam(f: Family) -> &'static str {
    match f {
        Family::V4 => "ip",
        Family::V6 => "ip6",
    }
}

fn addr_type(f: Family) -> &'static str {
    match f {
        Family::V4 => "ipv4_addr",
        Family::V6 => "ipv6_addr",
    }
}

/// The rules, sets and map elements one service port contributes to one family's table.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Fragment {
    chains: BTreeMap<String, Vec<String>>,
    /// Affinity sets and their timeouts in seconds.
    sets: BTreeMap<String, u32>,
    /// (map, key, verdict)
    elements: Vec<(&'static str, String, String)>,
    /// Endpoint IPs, which are masqueraded when they reach themselves through the service.
    hairpin: BTreeSet<IpAddr>,
}

impl Fragment {
    fn rule_count(&self) -> usize {
        self.chains.values().map(Vec::len).sum()
    }
}

/// Renders one service port for one family.
fn render(sp: &ServicePort, f: Family, cfg: &ProxyConfig) -> Fragment {
    let mut frag = Fragment::default();
    if !sp.has_family(f) {
        return frag;
    }
    let ip = fam(f);
    let proto = sp.name.protocol.as_str();
    let port_label = if sp.name.port_name.is_empty() {
        sp.port.to_string()
    } else {
        sp.name.port_name.clone()
    };
    let base = format!(
        "{}/{}/{}/{}",
        sp.name.namespace, sp.name.name, proto, port_label
    );
    let hash = proxier::short_hash(&[ip, &base]);
    let svc_chain = format!("service-{}-{base}", &hash[..8]);
    let ext_chain = format!("external-{}-{base}", &hash[..8]);
    let affinity_set = |e: &Endpoint| {
        let addr = e.ip.to_string().replace(':', ".");
        let h = proxier::short_hash(&[ip, &base, &addr, &e.port.to_string()]);
        format!("affinity-{}-{base}__{addr}/{}", &h[..8], e.port)
    };
    let dnat = |e: &Endpoint| {
        let dest = match e.ip {
            IpAddr::V4(v4) => format!("{v4}:{}", e.port),
            IpAddr::V6(v6) => format!("[{v6}]:{}", e.port),
        };
        format!("meta l4proto {proto} dnat to {dest}")
    };
    for e in sp
        .cluster_endpoints
        .iter()
        .chain(sp.external_endpoints.iter())
        .filter(|e| Family::of(&e.ip) == f)
    {
        frag.hairpin.insert(e.ip);
        if let Some(timeout) = sp.affinity_timeout {
            frag.sets.insert(affinity_set(e), timeout);
        }
    }
    // Endpoints are picked by rules in the service chain itself, not through per-endpoint
    // chains and a numgen vmap: every vmap literal is an anonymous set, and both the kernel's
    // naming of anonymous sets and nft's chain cache grow with their number, which made large
    // syncs quadratic. A NAT statement ends the chain, so the first rule that fires wins.
    let select = |targets: &[Endpoint]| -> Vec<String> {
        let targets: Vec<&Endpoint> = targets.iter().filter(|e| Family::of(&e.ip) == f).collect();
        let mut rules = Vec::new();
        let remember = |e: &Endpoint| match sp.affinity_timeout {
            Some(_) => format!("update @{} {{ {ip} saddr }} ", affinity_set(e)),
            None => String::new(),
        };
        if sp.affinity_timeout.is_some() {
            for e in &targets {
                rules.push(format!(
                    "{ip} saddr @{} {}{}",
                    affinity_set(e),
                    remember(e),
                    dnat(e)
                ));
            }
        }
        let n = targets.len();
        if n == 0 {
            rules.push("drop".into());
        }
        for (i, e) in targets.iter().enumerate() {
            if i + 1 == n {
                rules.push(format!("{}{}", remember(e), dnat(e)));
            } else {
                rules.push(format!(
                    "numgen random mod {} == 0 {}{}",
                    n - i,
                    remember(e),
                    dnat(e)
                ));
            }
        }
        rules
    };
    let has = |list: &[Endpoint]| list.iter().any(|e| Family::of(&e.ip) == f);
    let cluster_ok = has(&sp.cluster_endpoints);
    let any_usable = cluster_ok || has(&sp.external_endpoints);
    let no_ep_verdict = |local_only: bool| {
        if local_only && !sp.endpoints.is_empty() {
            "drop".to_string()
        } else {
            format!("goto {REJECT_CHAIN}")
        }
    };

    if cluster_ok {
        let mut rules = Vec::new();
        if cfg.masquerade_all {
            rules.push(format!("jump {MARK_MASQ}"));
        } else {
            if cfg.cluster_cidrs.iter().any(|c| c.family() == f) {
                for cip in sp.cluster_ips_of(f) {
                    rules.push(format!(
                        "{ip} daddr {cip} {proto} dport {} {ip} saddr != @{CLUSTER_CIDRS} jump {MARK_MASQ}",
                        sp.port
                    ));
                }
            }
        }
        rules.extend(select(&sp.cluster_endpoints));
        frag.chains.insert(svc_chain.clone(), rules);
    }
    for cip in sp.cluster_ips_of(f) {
        let key = format!("{cip} . {proto} . {}", sp.port);
        if cluster_ok {
            frag.elements
                .push((SERVICE_IPS, key, format!("goto {svc_chain}")));
        } else {
            frag.elements.push((
                NO_ENDPOINT_SERVICES,
                key,
                no_ep_verdict(sp.internal_policy_local),
            ));
        }
    }

    if sp.has_external() {
        let ext_usable = any_usable && (sp.external_policy_local || has(&sp.external_endpoints));
        if ext_usable {
            let mut rules = Vec::new();
            if sp.external_policy_local {
                rules.push(format!("fib saddr type local jump {MARK_MASQ}"));
                if cluster_ok {
                    rules.push(format!("fib saddr type local goto {svc_chain}"));
                }
            } else {
                rules.push(format!("jump {MARK_MASQ}"));
            }
            rules.extend(select(&sp.external_endpoints));
            frag.chains.insert(ext_chain.clone(), rules);
        }
        let verdict = if ext_usable {
            format!("goto {ext_chain}")
        } else {
            no_ep_verdict(sp.external_policy_local)
        };
        let map_for = |usable: bool, with: &'static str, without: &'static str| {
            if usable {
                with
            } else {
                without
            }
        };
        for eip in sp.external_ips_of(f) {
            frag.elements.push((
                map_for(ext_usable, SERVICE_IPS, NO_ENDPOINT_SERVICES),
                format!("{eip} . {proto} . {}", sp.port),
                verdict.clone(),
            ));
        }
        if let Some(np) = sp.node_port {
            frag.elements.push((
                map_for(ext_usable, SERVICE_NODEPORTS, NO_ENDPOINT_NODEPORTS),
                format!("{proto} . {np}"),
                verdict,
            ));
        }
    }
    frag
}

/// The chains, maps and sets every sync keeps in place, as (chain, rules) plus declarations.
fn base_objects(
    f: Family,
    cfg: &ProxyConfig,
    restrict_nodeports: bool,
) -> (Vec<String>, Vec<(String, Vec<String>)>) {
    let ip = fam(f);
    let at = addr_type(f);
    let decls = vec![
        format!("add map {ip} {TABLE} {SERVICE_IPS} {{ type {at} . inet_proto . inet_service : verdict ; comment \"ClusterIP, ExternalIP and LoadBalancer IP traffic\" ; }}"),
        format!("add map {ip} {TABLE} {SERVICE_NODEPORTS} {{ type inet_proto . inet_service : verdict ; comment \"NodePort traffic\" ; }}"),
        format!("add map {ip} {TABLE} {NO_ENDPOINT_SERVICES} {{ type {at} . inet_proto . inet_service : verdict ; comment \"vmap to drop or reject packets to services with no endpoints\" ; }}"),
        format!("add map {ip} {TABLE} {NO_ENDPOINT_NODEPORTS} {{ type inet_proto . inet_service : verdict ; comment \"vmap to drop or reject packets to service nodeports with no endpoints\" ; }}"),
        format!("add set {ip} {TABLE} {NODEPORT_IPS} {{ type {at} ; comment \"IPs that accept NodePort traffic\" ; }}"),
        format!("add set {ip} {TABLE} {HAIRPIN} {{ type {at} . {at} ; comment \"endpoint . endpoint: traffic from an endpoint to itself through a service\" ; }}"),
        format!("add set {ip} {TABLE} {CLUSTER_CIDRS} {{ type {at} ; flags interval ; comment \"pod CIDRs; traffic from elsewhere is masqueraded\" ; }}"),
    ];
    let loopback = match f {
        Family::V4 => "127.0.0.0/8",
        Family::V6 => "::1",
    };
    let nodeport_match = if restrict_nodeports {
        format!("{ip} daddr @{NODEPORT_IPS}")
    } else {
        format!("fib daddr type local {ip} daddr != {loopback}")
    };
    let mark = cfg.masquerade_mark;
    let hooked = |name: &str, kind: &str, hook: &str, prio: &str, rules: Vec<String>| {
        (
            format!("{name} {{ type {kind} hook {hook} priority {prio} ; policy accept ; }}"),
            rules,
        )
    };
    let chains = vec![
        (
            MARK_MASQ.to_string(),
            vec![format!("meta mark set meta mark | {mark:#x}")],
        ),
        (
            "masquerading".to_string(),
            vec![
                format!(
                    "ct status dnat {ip} saddr . {ip} daddr @{HAIRPIN} masquerade fully-random"
                ),
                format!("meta mark & {mark:#x} == 0 return"),
                format!("meta mark set meta mark ^ {mark:#x}"),
                "masquerade fully-random".to_string(),
            ],
        ),
        (
            "services".to_string(),
            vec![
                format!("{ip} daddr . meta l4proto . th dport vmap @{SERVICE_IPS}"),
                format!("{nodeport_match} meta l4proto . th dport vmap @{SERVICE_NODEPORTS}"),
            ],
        ),
        (
            "service-endpoints-check".to_string(),
            vec![
                format!("{ip} daddr . meta l4proto . th dport vmap @{NO_ENDPOINT_SERVICES}"),
                format!("{nodeport_match} meta l4proto . th dport vmap @{NO_ENDPOINT_NODEPORTS}"),
            ],
        ),
        (REJECT_CHAIN.to_string(), vec!["reject".to_string()]),
        hooked(
            "nat-prerouting",
            "nat",
            "prerouting",
            "dstnat",
            vec!["jump services".into()],
        ),
        hooked(
            "nat-output",
            "nat",
            "output",
            "-100",
            vec!["jump services".into()],
        ),
        hooked(
            "nat-postrouting",
            "nat",
            "postrouting",
            "srcnat",
            vec!["jump masquerading".into()],
        ),
        hooked(
            "filter-input",
            "filter",
            "input",
            "-110",
            vec!["ct state new jump service-endpoints-check".into()],
        ),
        hooked(
            "filter-forward",
            "filter",
            "forward",
            "-110",
            vec!["ct state new jump service-endpoints-check".into()],
        ),
        hooked(
            "filter-output",
            "filter",
            "output",
            "-110",
            vec!["ct state new jump service-endpoints-check".into()],
        ),
    ];
    (decls, chains)
}

/// The chain's bare name (declarations carry their hook after the name).
fn chain_name(decl: &str) -> &str {
    decl.split_whitespace().next().unwrap_or(decl)
}

/// Per-family state of what was last written.
#[derive(Default)]
struct FamilyState {
    fragments: HashMap<ServicePortName, Fragment>,
    node_ips: Vec<IpAddr>,
    /// How many service ports list each endpoint IP (its hairpin element goes with the last).
    hairpin_refs: HashMap<IpAddr, usize>,
    written: bool,
}

/// The nftables proxier.
pub struct NftProxier {
    cfg: Arc<ProxyConfig>,
    families: Vec<Family>,
    ports: ServicePortMap,
    state: BTreeMap<Family, FamilyState>,
}

impl NftProxier {
    pub fn new(cfg: Arc<ProxyConfig>, families: Vec<Family>) -> NftProxier {
        NftProxier {
            cfg,
            families,
            ports: ServicePortMap::new(),
            state: BTreeMap::new(),
        }
    }

    /// The current service-port map (for health-check node ports).
    pub fn ports(&self) -> &ServicePortMap {
        &self.ports
    }

    /// Forgets what was written so the next sync rewrites everything.
    pub fn invalidate(&mut self) {
        for st in self.state.values_mut() {
            st.written = false;
        }
    }

    /// Applies `changes`; a full sync rewrites every chain and map of the table.
    pub async fn sync(&mut self, changes: &Changes, full: bool) -> Result<SyncReport, ProxyError> {
        let changed = proxier::apply_changes(&mut self.ports, changes);
        let restrict = !self.cfg.node_port_cidrs.is_empty();
        let all_node_ips = if restrict {
            net::node_addresses(&self.cfg.node_port_cidrs).await?
        } else {
            Vec::new()
        };
        let mut tx = String::new();
        let mut new_state: Vec<(Family, FamilyState)> = Vec::new();
        let mut rewritten = 0;
        for &f in &self.families {
            let prev = self.state.remove(&f).unwrap_or_default();
            let node_ips: Vec<IpAddr> = all_node_ips
                .iter()
                .copied()
                .filter(|i| Family::of(i) == f)
                .collect();
            let full_here = full || !prev.written;
            let (st, n) = if full_here {
                self.full_tx(&mut tx, f, prev, node_ips, restrict)
            } else {
                self.incremental_tx(&mut tx, f, prev, &changed, node_ips)
            };
            rewritten += n;
            new_state.push((f, st));
        }
        if !tx.is_empty() {
            exec::run("nft", &["-f", "-"], Some(&tx)).await?;
        }
        let mut rules = Vec::new();
        for (f, mut st) in new_state {
            st.written = true;
            let count = st.fragments.values().map(Fragment::rule_count).sum();
            rules.push((fam(f), count));
            self.state.insert(f, st);
        }
        Ok(SyncReport {
            full,
            rewritten,
            rules,
            stale_udp: crate::conntrack::stale_entries(&changed),
        })
    }

    fn full_tx(
        &self,
        tx: &mut String,
        f: Family,
        prev: FamilyState,
        node_ips: Vec<IpAddr>,
        restrict: bool,
    ) -> (FamilyState, usize) {
        let ip = fam(f);
        let t = format!("{ip} {TABLE}");
        let _ = writeln!(tx, "add table {t} {{ comment \"rules for kube-proxy\" ; }}");
        if !prev.written {
            // Whatever an earlier run left behind is replaced wholesale.
            let _ = writeln!(tx, "delete table {t}");
            let _ = writeln!(tx, "add table {t} {{ comment \"rules for kube-proxy\" ; }}");
        }
        let (decls, chains) = base_objects(f, &self.cfg, restrict);
        for d in decls {
            let _ = writeln!(tx, "{d}");
        }
        for m in [
            SERVICE_IPS,
            SERVICE_NODEPORTS,
            NO_ENDPOINT_SERVICES,
            NO_ENDPOINT_NODEPORTS,
        ] {
            let _ = writeln!(tx, "flush map {t} {m}");
        }
        refill_set(tx, &t, NODEPORT_IPS, &node_ips);
        let _ = writeln!(tx, "flush set {t} {HAIRPIN}");
        let cidrs = self.cfg.cluster_cidrs.iter().filter(|c| c.family() == f);
        refill_set(tx, &t, CLUSTER_CIDRS, cidrs);
        for (decl, rules) in &chains {
            let name = chain_name(decl);
            let _ = writeln!(tx, "add chain {t} {decl}");
            let _ = writeln!(tx, "flush chain {t} {name}");
            add_rules(tx, &t, name, rules);
        }
        let mut fragments = HashMap::new();
        for (name, sp) in &self.ports {
            let frag = render(sp, f, &self.cfg);
            if frag == Fragment::default() {
                continue;
            }
            for chain in frag.chains.keys() {
                let _ = writeln!(tx, "add chain {t} {chain}");
                let _ = writeln!(tx, "flush chain {t} {chain}");
            }
            for (set, timeout) in &frag.sets {
                add_affinity_set(tx, &t, f, set, *timeout);
            }
            for (chain, rules) in &frag.chains {
                add_rules(tx, &t, chain, rules);
            }
            for (map, key, verdict) in &frag.elements {
                let _ = writeln!(tx, "add element {t} {map} {{ {key} : {verdict} }}");
            }
            fragments.insert(name.clone(), frag);
        }
        // Chains and sets of services that are gone: flush every one first, then delete.
        let live_chains: std::collections::HashSet<&String> = fragments
            .values()
            .flat_map(|n: &Fragment| n.chains.keys())
            .collect();
        let live_sets: std::collections::HashSet<&String> = fragments
            .values()
            .flat_map(|n: &Fragment| n.sets.keys())
            .collect();
        let stale_chains: BTreeSet<&String> = prev
            .fragments
            .values()
            .flat_map(|old| old.chains.keys())
            .filter(|c| !live_chains.contains(c))
            .collect();
        let stale_sets: BTreeSet<&String> = prev
            .fragments
            .values()
            .flat_map(|old| old.sets.keys())
            .filter(|s| !live_sets.contains(s))
            .collect();
        if prev.written {
            for c in &stale_chains {
                let _ = writeln!(tx, "flush chain {t} {c}");
            }
            for c in &stale_chains {
                let _ = writeln!(tx, "delete chain {t} {c}");
            }
            for s in &stale_sets {
                let _ = writeln!(tx, "delete set {t} {s}");
            }
        }
        let mut hairpin_refs: HashMap<IpAddr, usize> = HashMap::new();
        for frag in fragments.values() {
            for ep in &frag.hairpin {
                *hairpin_refs.entry(*ep).or_default() += 1;
            }
        }
        let all: Vec<IpAddr> = hairpin_refs.keys().copied().collect();
        hairpin_elements(tx, &t, "add", &all);
        let n = fragments.len();
        (
            FamilyState {
                fragments,
                node_ips,
                hairpin_refs,
                written: false,
            },
            n,
        )
    }

    fn incremental_tx(
        &self,
        tx: &mut String,
        f: Family,
        mut prev: FamilyState,
        changed: &[proxier::PortChange],
        node_ips: Vec<IpAddr>,
    ) -> (FamilyState, usize) {
        let t = format!("{} {TABLE}", fam(f));
        if node_ips != prev.node_ips {
            refill_set(tx, &t, NODEPORT_IPS, &node_ips);
            prev.node_ips = node_ips;
        }
        let mut rewritten = 0;
        let mut hairpin_before: HashMap<IpAddr, usize> = HashMap::new();
        for change in changed {
            let old = prev.fragments.remove(&change.name).unwrap_or_default();
            let new = change
                .new
                .as_ref()
                .map(|sp| render(sp, f, &self.cfg))
                .unwrap_or_default();
            if old == new {
                if new != Fragment::default() {
                    prev.fragments.insert(change.name.clone(), new);
                }
                continue;
            }
            rewritten += 1;
            for (map, key, verdict) in &old.elements {
                if !new
                    .elements
                    .iter()
                    .any(|(m, k, v)| m == map && k == key && v == verdict)
                {
                    let _ = writeln!(tx, "delete element {t} {map} {{ {key} }}");
                }
            }
            for ep in old.hairpin.iter().chain(&new.hairpin) {
                let count = prev.hairpin_refs.get(ep).copied().unwrap_or(0);
                hairpin_before.entry(*ep).or_insert(count);
            }
            for ep in &old.hairpin {
                if let Some(n) = prev.hairpin_refs.get_mut(ep) {
                    *n = n.saturating_sub(1);
                }
            }
            for ep in &new.hairpin {
                *prev.hairpin_refs.entry(*ep).or_default() += 1;
            }
            for c in old.chains.keys() {
                let _ = writeln!(tx, "flush chain {t} {c}");
            }
            for (s, timeout) in &old.sets {
                if new.sets.get(s) != Some(timeout) {
                    let _ = writeln!(tx, "delete set {t} {s}");
                }
            }
            for c in new.chains.keys() {
                let _ = writeln!(tx, "add chain {t} {c}");
            }
            for (s, timeout) in &new.sets {
                if old.sets.get(s) != Some(timeout) {
                    add_affinity_set(tx, &t, f, s, *timeout);
                }
            }
            for (c, rules) in &new.chains {
                add_rules(tx, &t, c, rules);
            }
            for c in old.chains.keys().filter(|c| !new.chains.contains_key(*c)) {
                let _ = writeln!(tx, "delete chain {t} {c}");
            }
            for (map, key, verdict) in &new.elements {
                if !old
                    .elements
                    .iter()
                    .any(|(m, k, v)| m == map && k == key && v == verdict)
                {
                    let _ = writeln!(tx, "add element {t} {map} {{ {key} : {verdict} }}");
                }
            }
            if new != Fragment::default() {
                prev.fragments.insert(change.name.clone(), new);
            }
        }
        let (mut gone, mut added) = (Vec::new(), Vec::new());
        for (ep, before) in hairpin_before {
            let now = prev.hairpin_refs.get(&ep).copied().unwrap_or(0);
            if now == 0 {
                prev.hairpin_refs.remove(&ep);
            }
            match (before > 0, now > 0) {
                (true, false) => gone.push(ep),
                (false, true) => added.push(ep),
                _ => {}
            }
        }
        hairpin_elements(tx, &t, "delete", &gone);
        hairpin_elements(tx, &t, "add", &added);
        (prev, rewritten)
    }
}

/// Empties `set`, then adds `items` (if any) in one statement.
fn refill_set<T: std::fmt::Display>(
    tx: &mut String,
    table: &str,
    set: &str,
    items: impl IntoIterator<Item = T>,
) {
    let _ = writeln!(tx, "flush set {table} {set}");
    let list: Vec<String> = items.into_iter().map(|i| i.to_string()).collect();
    if !list.is_empty() {
        let _ = writeln!(tx, "add element {table} {set} {{ {} }}", list.join(" , "));
    }
}

/// Declares a session-affinity set whose entries expire after `timeout` seconds.
fn add_affinity_set(tx: &mut String, table: &str, f: Family, set: &str, timeout: u32) {
    let _ = writeln!(
        tx,
        "add set {table} {set} {{ type {} ; flags dynamic,timeout ; timeout {timeout}s ; }}",
        addr_type(f)
    );
}

/// Appends `rules` to `chain`.
fn add_rules(tx: &mut String, table: &str, chain: &str, rules: &[String]) {
    for r in rules {
        let _ = writeln!(tx, "add rule {table} {chain} {r}");
    }
}

/// Adds or deletes `ep . ep` hairpin elements, a thousand per statement.
fn hairpin_elements(tx: &mut String, table: &str, verb: &str, eps: &[IpAddr]) {
    for chunk in eps.chunks(1000) {
        let list: Vec<String> = chunk.iter().map(|ip| format!("{ip} . {ip}")).collect();
        let _ = writeln!(
            tx,
            "{verb} element {table} {HAIRPIN} {{ {} }}",
            list.join(" , ")
        );
    }
}

/// Whether nftables works here: a throw-away table can be created and removed.
pub async fn usable() -> bool {
    exec::works(
        "nft",
        &["-f", "-"],
        Some("add table ip kube-proxy-probe\ndelete table ip kube-proxy-probe\n"),
    )
    .await
}

/// Removes the kube-proxy tables of both families.
pub async fn cleanup() -> Result<(), ProxyError> {
    for ip in ["ip", "ip6"] {
        let tx = format!("add table {ip} {TABLE}\ndelete table {ip} {TABLE}\n");
        if let Err(err) = exec::run("nft", &["-f", "-"], Some(&tx)).await {
            tracing::debug!(%err, family = ip, "no nftables table to remove");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Protocol;

    fn cfg() -> ProxyConfig {
        let c: crate::config::KubeProxyConfiguration = Default::default();
        let mut r = c.resolve().unwrap();
        r.cluster_cidrs = vec!["10.244.0.0/16".parse().unwrap()];
        r
    }

    fn ep(ip: &str) -> Endpoint {
        Endpoint {
            ip: ip.parse().unwrap(),
            port: 8080,
            ready: true,
            serving: true,
            terminating: false,
            node_name: Some("a".into()),
        }
    }

    fn port(eps: Vec<Endpoint>) -> ServicePort {
        ServicePort {
            name: ServicePortName {
                namespace: "ns".into(),
                name: "web".into(),
                port_name: "http".into(),
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
            local_endpoints: eps,
        }
    }

    #[test]
    fn service_with_endpoints_picks_one_at_random() {
        let frag = render(
            &port(vec![ep("10.244.0.11"), ep("10.244.0.12")]),
            Family::V4,
            &cfg(),
        );
        let svc = frag
            .chains
            .iter()
            .find(|(n, _)| n.starts_with("service-"))
            .unwrap();
        assert!(svc.0.ends_with("-ns/web/tcp/http"));
        assert_eq!(
            svc.1[1],
            "numgen random mod 2 == 0 meta l4proto tcp dnat to 10.244.0.11:8080"
        );
        assert_eq!(svc.1[2], "meta l4proto tcp dnat to 10.244.0.12:8080");
        assert!(svc.1[0].contains("saddr != @cluster-cidrs jump mark-for-masquerade"));
        assert_eq!(
            frag.chains.len(),
            2,
            "a service and an external chain, nothing per endpoint"
        );
        assert_eq!(frag.hairpin.len(), 2);
        assert!(frag
            .elements
            .iter()
            .any(|(m, k, _)| *m == SERVICE_IPS && k == "10.0.0.10 . tcp . 80"));
        assert!(frag
            .elements
            .iter()
            .any(|(m, k, _)| *m == SERVICE_NODEPORTS && k == "tcp . 30080"));
        assert!(render(&port(vec![]), Family::V6, &cfg()).chains.is_empty());
    }

    #[test]
    fn ipv6_services_go_to_the_ip6_table() {
        let mut v6 = ep("fd00::11");
        v6.port = 8080;
        let mut p = port(vec![v6]);
        p.cluster_ips = vec!["fd00:96::10".parse().unwrap()];
        assert_eq!(render(&p, Family::V4, &cfg()), Fragment::default());
        let frag = render(&p, Family::V6, &cfg());
        let svc = frag
            .chains
            .iter()
            .find(|(n, _)| n.starts_with("service-"))
            .unwrap();
        assert_eq!(
            svc.1.last().unwrap(),
            "meta l4proto tcp dnat to [fd00::11]:8080"
        );
        assert!(frag
            .elements
            .iter()
            .any(|(m, k, _)| *m == SERVICE_IPS && k == "fd00:96::10 . tcp . 80"));
    }

    #[test]
    fn service_without_endpoints_is_rejected() {
        let frag = render(&port(vec![]), Family::V4, &cfg());
        assert!(frag.chains.is_empty());
        assert!(frag
            .elements
            .iter()
            .all(
                |(m, _, v)| (*m == NO_ENDPOINT_SERVICES || *m == NO_ENDPOINT_NODEPORTS)
                    && v == "goto reject-chain"
            ));
    }

    #[test]
    fn affinity_adds_a_set_per_endpoint() {
        let mut p = port(vec![ep("10.244.0.11")]);
        p.affinity_timeout = Some(60);
        let frag = render(&p, Family::V4, &cfg());
        assert_eq!(frag.sets.len(), 1);
        assert_eq!(frag.sets.values().next(), Some(&60));
        let set = frag.sets.keys().next().unwrap();
        let svc = frag
            .chains
            .iter()
            .find(|(n, _)| n.starts_with("service-"))
            .unwrap();
        assert_eq!(
            svc.1[1],
            format!("ip saddr @{set} update @{set} {{ ip saddr }} meta l4proto tcp dnat to 10.244.0.11:8080")
        );
    }
}
