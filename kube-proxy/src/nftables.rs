//! The nftables mode: one `kube-proxy` table per IP family, owned by kube-proxy. Verdict maps
//! send service IP:port (and node ports) to chains that pick an endpoint at random with
//! `numgen`: shared picker chains and endpoint maps for plain services, per-service chains for
//! those with affinity or a Local external policy. Services without endpoints are rejected from
//! filter hooks, and loadBalancerSourceRanges are enforced before DNAT. Each sync is one atomic
//! `nft -f -` transaction; after the first full sync only changed services are rewritten.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    fmt::Write as _,
    net::IpAddr,
    sync::Arc,
};

use crate::{
    config::ProxyConfig,
    exec,
    model::{Endpoint, Protocol, ServicePort, ServicePortMap, ServicePortName},
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
const PROTOCOLS: [Protocol; 3] = [Protocol::Tcp, Protocol::Udp, Protocol::Sctp];

/// The endpoint map for one protocol, of service addresses or of node ports. There is one per
/// protocol because the map data is declared as `address . <protocol> dport`: nft 1.0.x refuses
/// rules that use a map read back from the kernel whose data is the protocol-less `th dport`.
fn endpoint_map(protocol: Protocol, node_port: bool) -> &'static str {
    match (protocol, node_port) {
        (Protocol::Tcp, false) => "service-endpoints-tcp",
        (Protocol::Udp, false) => "service-endpoints-udp",
        (Protocol::Sctp, false) => "service-endpoints-sctp",
        (Protocol::Tcp, true) => "nodeport-endpoints-tcp",
        (Protocol::Udp, true) => "nodeport-endpoints-udp",
        (Protocol::Sctp, true) => "nodeport-endpoints-sctp",
    }
}
const NODEPORT_IPS: &str = "nodeport-ips";
const CLUSTER_CIDRS: &str = "cluster-cidrs";
/// `source . source` of new DNATed connections, the dynamic set that recognises hairpin
/// traffic (see the masquerading chain).
const HAIRPIN: &str = "hairpin-connections";
const MARK_MASQ: &str = "mark-for-masquerade";
const REJECT_CHAIN: &str = "reject-chain";
const FIREWALL_IPS: &str = "firewall-ips";
const FIREWALL_CHECK: &str = "firewall-check";

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

/// A chain shared by every plain service port (no session affinity, no Local external policy)
/// with the same number of endpoints: it picks an index with `numgen` and looks the destination
/// up in an endpoint map keyed by address . protocol . port . index. Plain service ports thus
/// cost map elements only, never chains or rules of their own, which is what keeps `nft`'s
/// per-rule parse and commit cost off large syncs. Few rules bind the endpoint maps, because the
/// kernel validates every element added to a data map against every rule bound to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Picker {
    /// Cluster IP traffic, keyed by destination address.
    Cluster(usize),
    /// External and load-balancer IP traffic, keyed by destination address.
    External(usize),
    /// Node-port traffic, keyed by protocol and port alone.
    NodePort(usize),
}

impl Picker {
    fn chain(self) -> String {
        match self {
            Picker::Cluster(n) => format!("cluster-endpoints-mod-{n}"),
            Picker::External(n) => format!("external-endpoints-mod-{n}"),
            Picker::NodePort(n) => format!("nodeport-endpoints-mod-{n}"),
        }
    }

    fn rules(self, f: Family, cfg: &ProxyConfig) -> Vec<String> {
        let ip = fam(f);
        let mut rules = Vec::with_capacity(4);
        let (n, key, node_port) = match self {
            Picker::Cluster(n) => {
                if cfg.masquerade_all {
                    rules.push(format!("jump {MARK_MASQ}"));
                } else if cfg.cluster_cidrs.iter().any(|c| c.family() == f) {
                    rules.push(format!("{ip} saddr != @{CLUSTER_CIDRS} jump {MARK_MASQ}"));
                }
                (n, format!("{ip} daddr . th dport"), false)
            }
            Picker::External(n) => {
                rules.push(format!("jump {MARK_MASQ}"));
                (n, format!("{ip} daddr . th dport"), false)
            }
            Picker::NodePort(n) => {
                rules.push(format!("jump {MARK_MASQ}"));
                (n, "th dport".to_string(), true)
            }
        };
        for p in PROTOCOLS {
            rules.push(format!(
                "meta l4proto {} dnat {ip} to {key} . numgen random mod {n} map @{}",
                p.as_str(),
                endpoint_map(p, node_port)
            ));
        }
        rules
    }
}

/// The rules, sets and map elements one service port contributes to one family's table.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Fragment {
    chains: BTreeMap<String, Vec<String>>,
    /// Affinity sets and their timeouts in seconds.
    sets: BTreeMap<String, u32>,
    /// (map, key, value)
    elements: Vec<(&'static str, String, String)>,
    /// Shared chains the elements jump to.
    pickers: BTreeSet<Picker>,
}

impl Fragment {
    fn rule_count(&self) -> usize {
        self.chains.values().map(Vec::len).sum()
    }
}

/// The `address . port` an endpoint map element sends traffic to.
fn endpoint_value(e: &Endpoint) -> String {
    format!("{} . {}", e.ip, e.port)
}

/// The endpoints of `list` in family `f`.
fn endpoints_of(list: &[Endpoint], f: Family) -> Vec<&Endpoint> {
    list.iter().filter(|e| Family::of(&e.ip) == f).collect()
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
    let cluster_eps = endpoints_of(&sp.cluster_endpoints, f);
    let external_eps = endpoints_of(&sp.external_endpoints, f);
    if let Some(timeout) = sp.affinity_timeout {
        for e in cluster_eps.iter().chain(external_eps.iter()) {
            frag.sets.insert(affinity_set(e), timeout);
        }
    }
    // Services with affinity or a Local external policy pick endpoints with rules in their own
    // chains: a NAT statement ends the chain, so the first rule that fires wins.
    let plain = sp.affinity_timeout.is_none() && !sp.external_policy_local;
    let select = |targets: &[&Endpoint]| -> Vec<String> {
        let mut rules = Vec::new();
        let remember = |e: &Endpoint| match sp.affinity_timeout {
            Some(_) => format!("update @{} {{ {ip} saddr }} ", affinity_set(e)),
            None => String::new(),
        };
        if sp.affinity_timeout.is_some() {
            for e in targets {
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
    // Endpoint map elements for traffic to `key`, which the picker's numgen index completes.
    let pick =
        |frag: &mut Fragment, picker: Picker, map: &'static str, key: &str, eps: &[&Endpoint]| {
            frag.pickers.insert(picker);
            for (i, e) in eps.iter().enumerate() {
                frag.elements
                    .push((map, format!("{key} . {i}"), endpoint_value(e)));
            }
            format!("goto {}", picker.chain())
        };
    let cluster_ok = !cluster_eps.is_empty();
    let any_usable = cluster_ok || !external_eps.is_empty();
    let no_ep_verdict = |local_only: bool| {
        if local_only && !sp.endpoints.is_empty() {
            "drop".to_string()
        } else {
            format!("goto {REJECT_CHAIN}")
        }
    };

    if cluster_ok && !plain {
        let mut rules = Vec::new();
        if cfg.masquerade_all {
            rules.push(format!("jump {MARK_MASQ}"));
        } else if cfg.cluster_cidrs.iter().any(|c| c.family() == f) {
            rules.push(format!("{ip} saddr != @{CLUSTER_CIDRS} jump {MARK_MASQ}"));
        }
        rules.extend(select(&cluster_eps));
        frag.chains.insert(svc_chain.clone(), rules);
    }
    for cip in sp.cluster_ips_of(f) {
        let key = format!("{cip} . {proto} . {}", sp.port);
        if !cluster_ok {
            frag.elements.push((
                NO_ENDPOINT_SERVICES,
                key,
                no_ep_verdict(sp.internal_policy_local),
            ));
        } else if plain {
            let picker = Picker::Cluster(cluster_eps.len());
            let ep_key = format!("{cip} . {}", sp.port);
            let verdict = pick(
                &mut frag,
                picker,
                endpoint_map(sp.name.protocol, false),
                &ep_key,
                &cluster_eps,
            );
            frag.elements.push((SERVICE_IPS, key, verdict));
        } else {
            frag.elements
                .push((SERVICE_IPS, key, format!("goto {svc_chain}")));
        }
    }

    if sp.has_external() {
        let ext_usable = any_usable && (sp.external_policy_local || !external_eps.is_empty());
        if ext_usable && !plain {
            let mut rules = Vec::new();
            if sp.external_policy_local {
                rules.push(format!("fib saddr type local jump {MARK_MASQ}"));
                if cluster_ok {
                    rules.push(format!("fib saddr type local goto {svc_chain}"));
                }
            } else {
                rules.push(format!("jump {MARK_MASQ}"));
            }
            rules.extend(select(&external_eps));
            frag.chains.insert(ext_chain.clone(), rules);
        }
        // loadBalancerSourceRanges: load-balancer traffic from elsewhere is dropped.
        let lb_ips: Vec<&IpAddr> = sp
            .load_balancer_ips
            .iter()
            .filter(|i| Family::of(i) == f)
            .collect();
        if !sp.source_ranges.is_empty() && !lb_ips.is_empty() {
            let fw_chain = format!("firewall-{}-{base}", &hash[..8]);
            let ranges: Vec<String> = sp
                .source_ranges
                .iter()
                .filter(|r| r.family() == f)
                .map(|r| r.to_string())
                .collect();
            let rule = if ranges.is_empty() {
                "drop".to_string()
            } else {
                format!("{ip} saddr != {{ {} }} drop", ranges.join(", "))
            };
            frag.chains.insert(fw_chain.clone(), vec![rule]);
            for lb in lb_ips {
                frag.elements.push((
                    FIREWALL_IPS,
                    format!("{lb} . {proto} . {}", sp.port),
                    format!("goto {fw_chain}"),
                ));
            }
        }
        let n = external_eps.len();
        for eip in sp.external_ips_of(f) {
            let key = format!("{eip} . {proto} . {}", sp.port);
            if !ext_usable {
                frag.elements.push((
                    NO_ENDPOINT_SERVICES,
                    key,
                    no_ep_verdict(sp.external_policy_local),
                ));
            } else if plain {
                let ep_key = format!("{eip} . {}", sp.port);
                let verdict = pick(
                    &mut frag,
                    Picker::External(n),
                    endpoint_map(sp.name.protocol, false),
                    &ep_key,
                    &external_eps,
                );
                frag.elements.push((SERVICE_IPS, key, verdict));
            } else {
                frag.elements
                    .push((SERVICE_IPS, key, format!("goto {ext_chain}")));
            }
        }
        if let Some(np) = sp.node_port {
            let key = format!("{proto} . {np}");
            if !ext_usable {
                frag.elements.push((
                    NO_ENDPOINT_NODEPORTS,
                    key,
                    no_ep_verdict(sp.external_policy_local),
                ));
            } else if plain {
                let verdict = pick(
                    &mut frag,
                    Picker::NodePort(n),
                    endpoint_map(sp.name.protocol, true),
                    &np.to_string(),
                    &external_eps,
                );
                frag.elements.push((SERVICE_NODEPORTS, key, verdict));
            } else {
                frag.elements
                    .push((SERVICE_NODEPORTS, key, format!("goto {ext_chain}")));
            }
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
    let mut decls = vec![
        format!("add map {ip} {TABLE} {SERVICE_IPS} {{ type {at} . inet_proto . inet_service : verdict ; comment \"ClusterIP, ExternalIP and LoadBalancer IP traffic\" ; }}"),
        format!("add map {ip} {TABLE} {SERVICE_NODEPORTS} {{ type inet_proto . inet_service : verdict ; comment \"NodePort traffic\" ; }}"),
        format!("add map {ip} {TABLE} {NO_ENDPOINT_SERVICES} {{ type {at} . inet_proto . inet_service : verdict ; comment \"vmap to drop or reject packets to services with no endpoints\" ; }}"),
        format!("add map {ip} {TABLE} {NO_ENDPOINT_NODEPORTS} {{ type inet_proto . inet_service : verdict ; comment \"vmap to drop or reject packets to service nodeports with no endpoints\" ; }}"),
        format!("add map {ip} {TABLE} {FIREWALL_IPS} {{ type {at} . inet_proto . inet_service : verdict ; comment \"destinations that are subject to LoadBalancerSourceRanges\" ; }}"),
        format!("add set {ip} {TABLE} {NODEPORT_IPS} {{ type {at} ; comment \"IPs that accept NodePort traffic\" ; }}"),
        format!("add set {ip} {TABLE} {HAIRPIN} {{ type {at} . {at} ; flags dynamic,timeout ; timeout 1s ; size 65536 ; comment \"source . source of new DNATed connections: a connection whose destination matches came back to its source\" ; }}"),
        format!("add set {ip} {TABLE} {CLUSTER_CIDRS} {{ type {at} ; flags interval ; comment \"pod CIDRs; traffic from elsewhere is masqueraded\" ; }}"),
    ];
    for p in PROTOCOLS {
        let proto = p.as_str();
        decls.push(format!("add map {ip} {TABLE} {} {{ typeof {ip} daddr . th dport . numgen random mod 1 : {ip} daddr . {proto} dport ; comment \"{proto} service address . port . endpoint index: endpoint address . port\" ; }}", endpoint_map(p, false)));
        decls.push(format!("add map {ip} {TABLE} {} {{ typeof th dport . numgen random mod 1 : {ip} daddr . {proto} dport ; comment \"{proto} node port . endpoint index: endpoint address . port\" ; }}", endpoint_map(p, true)));
    }
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
                // Hairpin: an endpoint that reached itself through a service is masqueraded
                // (upstream marks it in the endpoint's chain when the source is the endpoint).
                // nft cannot compare two packet fields, so the source is recorded as a
                // `source . source` pair and the `source . destination` lookup matches exactly
                // when both are equal: no per-endpoint elements, at one set update per new
                // DNATed connection (the NAT hooks see first packets only). Entries live 1 s;
                // should 65 536 distinct sources open connections within one, the update fails
                // and those hairpin connections go unmasqueraded.
                format!(
                    "ct status dnat update @{HAIRPIN} {{ {ip} saddr . {ip} saddr }} {ip} saddr . {ip} daddr @{HAIRPIN} masquerade fully-random"
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
        (
            FIREWALL_CHECK.to_string(),
            vec![format!(
                "{ip} daddr . meta l4proto . th dport vmap @{FIREWALL_IPS}"
            )],
        ),
        // Before DNAT, while the destination is still the load-balancer IP.
        hooked(
            "filter-prerouting-pre-dnat",
            "filter",
            "prerouting",
            "-110",
            vec![format!("ct state new jump {FIREWALL_CHECK}")],
        ),
        hooked(
            "filter-output-pre-dnat",
            "filter",
            "output",
            "-110",
            vec![format!("ct state new jump {FIREWALL_CHECK}")],
        ),
    ];
    (decls, chains)
}

/// The chain's bare name (declarations carry their hook after the name).
fn chain_name(decl: &str) -> &str {
    decl.split_whitespace().next().unwrap_or(decl)
}

/// Per-family state of what was last written: kube-proxy's own model of its table, so a sync
/// never reads the ruleset back.
#[derive(Default)]
struct FamilyState {
    fragments: HashMap<ServicePortName, Fragment>,
    /// Shared picker chains in place (kept until the next full sync once unused).
    pickers: BTreeSet<Picker>,
    node_ips: Vec<IpAddr>,
    written: bool,
}

/// Map and set elements to add or delete, written a thousand per statement (one statement per
/// element would cost `nft` a command each).
#[derive(Default)]
struct Elements {
    by_map: BTreeMap<&'static str, Vec<String>>,
}

impl Elements {
    fn push(&mut self, map: &'static str, item: String) {
        self.by_map.entry(map).or_default().push(item);
    }

    fn write(&self, tx: &mut String, table: &str, verb: &str) {
        for (map, items) in &self.by_map {
            for chunk in items.chunks(1000) {
                let _ = write!(tx, "{verb} element {table} {map} {{ ");
                for (i, item) in chunk.iter().enumerate() {
                    if i > 0 {
                        tx.push_str(" , ");
                    }
                    tx.push_str(item);
                }
                tx.push_str(" }\n");
            }
        }
    }
}

/// Declares `picker`'s chain (flushed) with its rules.
fn write_picker(tx: &mut String, table: &str, picker: Picker, f: Family, cfg: &ProxyConfig) {
    let chain = picker.chain();
    let _ = writeln!(tx, "add chain {table} {chain}");
    let _ = writeln!(tx, "flush chain {table} {chain}");
    add_rules(tx, table, &chain, &picker.rules(f, cfg));
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
        // On failure the families' states stay removed, so the next sync rewrites everything.
        if !tx.is_empty() {
            exec::run("nft", &["-f", "-"], Some(&tx)).await?;
        }
        let mut rules = Vec::new();
        for (f, mut st) in new_state {
            st.written = true;
            let count: usize = st
                .fragments
                .values()
                .map(Fragment::rule_count)
                .sum::<usize>()
                + st.pickers
                    .iter()
                    .map(|p| p.rules(f, &self.cfg).len())
                    .sum::<usize>();
            rules.push((fam(f), count));
            self.state.insert(f, st);
        }
        Ok(SyncReport {
            full,
            rewritten,
            rules,
            stale_udp: crate::conntrack::stale_entries(&changed, &self.ports),
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
        tx.reserve(self.ports.len() * 400);
        let _ = writeln!(tx, "add table {t} {{ comment \"rules for kube-proxy\" ; }}");
        if !prev.written {
            // Whatever an earlier run left behind is replaced wholesale.
            let _ = writeln!(tx, "delete table {t}");
            let _ = writeln!(tx, "add table {t} {{ comment \"rules for kube-proxy\" ; }}");
        }
        let (decls, chains) = base_objects(f, &self.cfg, restrict);
        if !prev.written {
            // Maps and sets are declared with the fresh table only: nft refuses to re-add a
            // typeof map it reads back from the kernel ("File exists").
            for d in decls {
                let _ = writeln!(tx, "{d}");
            }
        }
        for m in [
            SERVICE_IPS,
            SERVICE_NODEPORTS,
            NO_ENDPOINT_SERVICES,
            NO_ENDPOINT_NODEPORTS,
            FIREWALL_IPS,
        ]
        .into_iter()
        .chain(
            PROTOCOLS
                .iter()
                .flat_map(|p| [endpoint_map(*p, false), endpoint_map(*p, true)]),
        ) {
            let _ = writeln!(tx, "flush map {t} {m}");
        }
        refill_set(tx, &t, NODEPORT_IPS, &node_ips);
        let cidrs = self.cfg.cluster_cidrs.iter().filter(|c| c.family() == f);
        refill_set(tx, &t, CLUSTER_CIDRS, cidrs);
        for (decl, rules) in &chains {
            let name = chain_name(decl);
            let _ = writeln!(tx, "add chain {t} {decl}");
            let _ = writeln!(tx, "flush chain {t} {name}");
            add_rules(tx, &t, name, rules);
        }
        let mut fragments = HashMap::new();
        let mut elements = Elements::default();
        let mut pickers = BTreeSet::new();
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
            for (map, key, value) in &frag.elements {
                elements.push(map, format!("{key} : {value}"));
            }
            pickers.extend(frag.pickers.iter().copied());
            fragments.insert(name.clone(), frag);
        }
        for picker in &pickers {
            write_picker(tx, &t, *picker, f, &self.cfg);
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
        let stale_chains: BTreeSet<String> = prev
            .fragments
            .values()
            .flat_map(|old| old.chains.keys())
            .filter(|c| !live_chains.contains(c))
            .cloned()
            .chain(prev.pickers.difference(&pickers).map(|p| p.chain()))
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
        elements.write(tx, &t, "add");
        let n = fragments.len();
        (
            FamilyState {
                fragments,
                pickers,
                node_ips,
                written: false,
            },
            n,
        )
    }

    /// Writes only what `changed` alters: element deletions first (so no chain is still
    /// referenced when it goes), then chain rewrites, then element additions.
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
        let (mut dels, mut adds) = (Elements::default(), Elements::default());
        let mut chain_ops = String::new();
        let mut new_pickers = BTreeSet::new();
        for change in changed {
            let old = prev.fragments.remove(&change.name).unwrap_or_default();
            let new = change
                .current(&self.ports)
                .map(|sp| render(sp, f, &self.cfg))
                .unwrap_or_default();
            if old == new {
                if new != Fragment::default() {
                    prev.fragments.insert(change.name.clone(), new);
                }
                continue;
            }
            rewritten += 1;
            for (map, key, value) in &old.elements {
                if !new
                    .elements
                    .iter()
                    .any(|(m, k, v)| m == map && k == key && v == value)
                {
                    dels.push(map, key.clone());
                }
            }
            for (map, key, value) in &new.elements {
                if !old
                    .elements
                    .iter()
                    .any(|(m, k, v)| m == map && k == key && v == value)
                {
                    adds.push(map, format!("{key} : {value}"));
                }
            }
            if old.chains != new.chains || old.sets != new.sets {
                for c in old.chains.keys() {
                    let _ = writeln!(chain_ops, "flush chain {t} {c}");
                }
                for (s, timeout) in &old.sets {
                    if new.sets.get(s) != Some(timeout) {
                        let _ = writeln!(chain_ops, "delete set {t} {s}");
                    }
                }
                for c in new.chains.keys() {
                    let _ = writeln!(chain_ops, "add chain {t} {c}");
                }
                for (s, timeout) in &new.sets {
                    if old.sets.get(s) != Some(timeout) {
                        add_affinity_set(&mut chain_ops, &t, f, s, *timeout);
                    }
                }
                for (c, rules) in &new.chains {
                    add_rules(&mut chain_ops, &t, c, rules);
                }
                for c in old.chains.keys().filter(|c| !new.chains.contains_key(*c)) {
                    let _ = writeln!(chain_ops, "delete chain {t} {c}");
                }
            }
            new_pickers.extend(new.pickers.difference(&prev.pickers).copied());
            if new != Fragment::default() {
                prev.fragments.insert(change.name.clone(), new);
            }
        }
        for picker in new_pickers {
            write_picker(&mut chain_ops, &t, picker, f, &self.cfg);
            prev.pickers.insert(picker);
        }
        dels.write(tx, &t, "delete");
        tx.push_str(&chain_ops);
        adds.write(tx, &t, "add");
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
            source_ranges: vec![],
            endpoints: eps.clone(),
            cluster_endpoints: eps.clone(),
            external_endpoints: eps.clone(),
            local_endpoints: eps,
        }
    }

    fn has(frag: &Fragment, map: &str, key: &str, value: &str) -> bool {
        frag.elements
            .iter()
            .any(|(m, k, v)| *m == map && k == key && v == value)
    }

    #[test]
    fn plain_service_is_map_elements_and_a_shared_picker() {
        let frag = render(
            &port(vec![ep("10.244.0.11"), ep("10.244.0.12")]),
            Family::V4,
            &cfg(),
        );
        assert!(frag.chains.is_empty(), "no chain of its own: {frag:?}");
        assert_eq!(
            frag.pickers,
            [Picker::Cluster(2), Picker::NodePort(2)].into()
        );
        let cluster = "goto cluster-endpoints-mod-2";
        assert!(has(&frag, SERVICE_IPS, "10.0.0.10 . tcp . 80", cluster));
        let tcp = "service-endpoints-tcp";
        assert!(has(&frag, tcp, "10.0.0.10 . 80 . 0", "10.244.0.11 . 8080"));
        assert!(has(&frag, tcp, "10.0.0.10 . 80 . 1", "10.244.0.12 . 8080"));
        let nodeport = "goto nodeport-endpoints-mod-2";
        assert!(has(&frag, SERVICE_NODEPORTS, "tcp . 30080", nodeport));
        assert!(has(
            &frag,
            "nodeport-endpoints-tcp",
            "30080 . 1",
            "10.244.0.12 . 8080"
        ));
        assert_eq!(
            Picker::Cluster(2).rules(Family::V4, &cfg()),
            [
                "ip saddr != @cluster-cidrs jump mark-for-masquerade",
                "meta l4proto tcp dnat ip to ip daddr . th dport . numgen random mod 2 map @service-endpoints-tcp",
                "meta l4proto udp dnat ip to ip daddr . th dport . numgen random mod 2 map @service-endpoints-udp",
                "meta l4proto sctp dnat ip to ip daddr . th dport . numgen random mod 2 map @service-endpoints-sctp",
            ]
        );
        assert!(render(&port(vec![]), Family::V6, &cfg()).chains.is_empty());
    }

    #[test]
    fn local_external_policy_keeps_per_service_chains() {
        let mut p = port(vec![ep("10.244.0.11"), ep("10.244.0.12")]);
        p.external_policy_local = true;
        p.external_endpoints = vec![ep("10.244.0.11")];
        let frag = render(&p, Family::V4, &cfg());
        assert!(frag.pickers.is_empty());
        let (svc, rules) = frag
            .chains
            .iter()
            .find(|(n, _)| n.starts_with("service-"))
            .unwrap();
        assert!(svc.ends_with("-ns/web/tcp/http"));
        assert_eq!(
            rules[1],
            "numgen random mod 2 == 0 meta l4proto tcp dnat to 10.244.0.11:8080"
        );
        let ext = frag
            .chains
            .iter()
            .find(|(n, _)| n.starts_with("external-"))
            .unwrap();
        assert_eq!(ext.1[1], format!("fib saddr type local goto {svc}"));
        assert_eq!(
            ext.1.last().unwrap(),
            "meta l4proto tcp dnat to 10.244.0.11:8080"
        );
    }

    #[test]
    fn ipv6_services_go_to_the_ip6_table() {
        let mut p = port(vec![ep("fd00::11")]);
        p.cluster_ips = vec!["fd00:96::10".parse().unwrap()];
        assert_eq!(render(&p, Family::V4, &cfg()), Fragment::default());
        let frag = render(&p, Family::V6, &cfg());
        assert!(has(
            &frag,
            SERVICE_IPS,
            "fd00:96::10 . tcp . 80",
            "goto cluster-endpoints-mod-1"
        ));
        assert!(has(
            &frag,
            "service-endpoints-tcp",
            "fd00:96::10 . 80 . 0",
            "fd00::11 . 8080"
        ));
        assert!(Picker::Cluster(1).rules(Family::V6, &cfg())[0].starts_with("meta l4proto"));
        assert!(Picker::Cluster(1).rules(Family::V6, &cfg())[0].contains("dnat ip6 to ip6 daddr"));
    }

    #[test]
    fn one_endpoint_change_rewrites_only_its_elements() {
        let cfg = Arc::new(cfg());
        let mut proxier = NftProxier::new(cfg, vec![Family::V4]);
        let mut other = port(vec![ep("10.244.1.1")]);
        other.name.name = "other".into();
        other.cluster_ips = vec!["10.0.0.20".parse().unwrap()];
        other.node_port = None;
        let before = port(vec![ep("10.244.0.11"), ep("10.244.0.12")]);
        for p in [&before, &other] {
            proxier.ports.insert(p.name.clone(), p.clone());
        }
        let mut tx = String::new();
        let (mut st, _) =
            proxier.full_tx(&mut tx, Family::V4, FamilyState::default(), vec![], false);
        assert!(
            tx.contains("add chain ip kube-proxy cluster-endpoints-mod-2"),
            "{tx}"
        );
        assert!(
            tx.contains("add chain ip kube-proxy cluster-endpoints-mod-1"),
            "{tx}"
        );
        st.written = true;

        let after = port(vec![ep("10.244.0.11"), ep("10.244.0.13")]);
        proxier.ports.insert(after.name.clone(), after.clone());
        let change = proxier::PortChange {
            name: after.name.clone(),
            old: Some(before),
        };
        let mut tx = String::new();
        let (st, n) = proxier.incremental_tx(&mut tx, Family::V4, st, &[change], vec![]);
        assert_eq!(n, 1);
        assert_eq!(
            tx,
            "delete element ip kube-proxy nodeport-endpoints-tcp { 30080 . 1 }\n\
             delete element ip kube-proxy service-endpoints-tcp { 10.0.0.10 . 80 . 1 }\n\
             add element ip kube-proxy nodeport-endpoints-tcp { 30080 . 1 : 10.244.0.13 . 8080 }\n\
             add element ip kube-proxy service-endpoints-tcp { 10.0.0.10 . 80 . 1 : 10.244.0.13 . 8080 }\n"
        );
        assert_eq!(st.pickers.len(), 3);
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
    fn source_ranges_guard_load_balancer_ips() {
        let mut p = port(vec![ep("10.244.0.11")]);
        p.load_balancer_ips = vec!["10.98.0.101".parse().unwrap()];
        p.source_ranges = vec!["192.0.2.0/24".parse().unwrap()];
        let frag = render(&p, Family::V4, &cfg());
        let (chain, rules) = frag
            .chains
            .iter()
            .find(|(n, _)| n.starts_with("firewall-"))
            .unwrap();
        assert_eq!(rules, &["ip saddr != { 192.0.2.0/24 } drop"]);
        assert!(has(
            &frag,
            FIREWALL_IPS,
            "10.98.0.101 . tcp . 80",
            &format!("goto {chain}")
        ));
        p.source_ranges.clear();
        assert!(render(&p, Family::V4, &cfg())
            .elements
            .iter()
            .all(|(m, _, _)| *m != FIREWALL_IPS));
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
