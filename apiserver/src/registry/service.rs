//! Service-specific behaviour: cluster IPs from `--service-cluster-ip-range` (one range per IP
//! family, as upstream's dual-stack) and node ports from `--service-node-port-range`. Each
//! allocation is an etcd key named after the address or port and created only if absent, so two
//! apiserver replicas can never hand out the same one. Picking a random candidate and claiming
//! its key costs the same for a /24 and a /64, so IPv6 ranges need no bitmap.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use apis::validation::{FieldError, Path};
use rand::Rng;
use serde_json::{json, Value};

use super::{meta, ResourceDef};
use crate::{
    errors::{ApiError, ApiResult},
    server::ApiServer,
    storage::StorageError,
};

/// How many random candidates a create tries before calling a range full.
const PROBES: u32 = 256;

/// An IP family as spelled in `spec.ipFamilies`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    pub fn of(ip: IpAddr) -> Family {
        match ip {
            IpAddr::V4(_) => Family::V4,
            IpAddr::V6(_) => Family::V6,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Family::V4 => "IPv4",
            Family::V6 => "IPv6",
        }
    }

    fn parse(name: &str) -> Option<Family> {
        match name {
            "IPv4" => Some(Family::V4),
            "IPv6" => Some(Family::V6),
            _ => None,
        }
    }

    fn other(self) -> Family {
        match self {
            Family::V4 => Family::V6,
            Family::V6 => Family::V4,
        }
    }
}

/// One service CIDR. Addresses are kept as integers of the family's width.
#[derive(Debug, Clone, Copy)]
pub struct IpRange {
    family: Family,
    base: u128,
    /// Usable addresses: the network address (and IPv4's broadcast) are never handed out.
    usable: u128,
}

impl IpRange {
    pub fn parse(cidr: &str) -> Result<IpRange, String> {
        let (ip, bits) = cidr
            .split_once('/')
            .ok_or_else(|| format!("{cidr:?} is not a CIDR"))?;
        let ip: IpAddr = ip.parse().map_err(|e| format!("{cidr:?}: {e}"))?;
        let bits: u32 = bits.parse().map_err(|e| format!("{cidr:?}: {e}"))?;
        let (family, width, prefixes, reserved) = match ip {
            IpAddr::V4(_) => (Family::V4, 32, 8..=30, 2),
            IpAddr::V6(_) => (Family::V6, 128, 64..=126, 1),
        };
        if !prefixes.contains(&bits) {
            return Err(format!(
                "{cidr:?}: prefix length must be between {} and {}",
                prefixes.start(),
                prefixes.end()
            ));
        }
        let size = 1u128 << (width - bits);
        Ok(IpRange {
            family,
            base: to_int(ip) & !(size - 1),
            usable: size - reserved,
        })
    }

    pub fn family(&self) -> Family {
        self.family
    }

    /// The first usable address: the `kubernetes` service's.
    pub fn first(&self) -> IpAddr {
        self.nth(0)
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        Family::of(ip) == self.family && {
            let ip = to_int(ip);
            ip > self.base && ip - self.base <= self.usable
        }
    }

    fn nth(&self, n: u128) -> IpAddr {
        let ip = self.base + 1 + n % self.usable;
        match self.family {
            // The range is IPv4, so the value fits 32 bits.
            Family::V4 => IpAddr::V4(Ipv4Addr::from(ip as u32)),
            Family::V6 => IpAddr::V6(Ipv6Addr::from(ip)),
        }
    }
}

fn to_int(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u32::from(v4).into(),
        IpAddr::V6(v6) => v6.into(),
    }
}

/// `--service-cluster-ip-range`: one CIDR, or two of different families. The first one's family
/// is the cluster's default (primary) family.
#[derive(Debug, Clone, Copy)]
pub struct ServiceIpRanges {
    primary: IpRange,
    secondary: Option<IpRange>,
}

impl ServiceIpRanges {
    pub fn parse(value: &str) -> Result<ServiceIpRanges, String> {
        let cidrs: Vec<&str> = value.split(',').map(str::trim).collect();
        match cidrs.as_slice() {
            [one] => Ok(ServiceIpRanges {
                primary: IpRange::parse(one)?,
                secondary: None,
            }),
            [one, two] => {
                let (primary, secondary) = (IpRange::parse(one)?, IpRange::parse(two)?);
                if primary.family == secondary.family {
                    return Err(
                        "service-cluster-ip-range[0] and service-cluster-ip-range[1] must be of different IP family"
                            .to_string(),
                    );
                }
                Ok(ServiceIpRanges {
                    primary,
                    secondary: Some(secondary),
                })
            }
            _ => Err("may only hold up to 2 CIDRs, one per IP family".to_string()),
        }
    }

    /// The `kubernetes` service's address: the first of the primary range.
    pub fn first(&self) -> IpAddr {
        self.primary.first()
    }

    pub fn primary_family(&self) -> Family {
        self.primary.family
    }

    pub fn is_dual_stack(&self) -> bool {
        self.secondary.is_some()
    }

    pub fn range(&self, family: Family) -> Option<&IpRange> {
        std::iter::once(&self.primary)
            .chain(self.secondary.as_ref())
            .find(|r| r.family == family)
    }
}

/// A node port range such as 30000-32767.
#[derive(Debug, Clone, Copy)]
pub struct PortRange {
    pub first: u16,
    pub last: u16,
}

impl PortRange {
    pub fn parse(s: &str) -> Result<PortRange, String> {
        let (a, b) = s
            .split_once('-')
            .ok_or_else(|| format!("{s:?} is not a port range"))?;
        let first: u16 = a.trim().parse().map_err(|e| format!("{s:?}: {e}"))?;
        let last: u16 = b.trim().parse().map_err(|e| format!("{s:?}: {e}"))?;
        if first == 0 || first > last {
            return Err(format!("{s:?} is not a valid port range"));
        }
        Ok(PortRange { first, last })
    }
}

/// What a create allocated, to give back if the write fails.
#[derive(Debug, Default)]
pub struct Allocation {
    keys: Vec<String>,
}

impl Allocation {
    pub async fn release(self, server: &ApiServer) {
        for key in self.keys {
            release_key(server, &key).await;
        }
    }
}

fn ip_key(server: &ApiServer, ip: &str) -> String {
    format!("{}ranges/serviceips/{ip}", server.root)
}

fn port_key(server: &ApiServer, port: i64) -> String {
    format!("{}ranges/servicenodeports/{port}", server.root)
}

async fn claim(server: &ApiServer, key: &str, owner: &str) -> ApiResult<bool> {
    match server.etcd.create(key, owner.as_bytes().to_vec()).await {
        Ok(_) => Ok(true),
        Err(StorageError::AlreadyExists) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

async fn release_key(server: &ApiServer, key: &str) {
    if let Ok(Some(kv)) = server.etcd.get(key).await {
        if let Err(err) = server.etcd.delete(key, kv.mod_revision).await {
            tracing::warn!(%key, %err, "releasing a service allocation");
        }
    }
}

fn string_list(svc: &Value, pointer: &str) -> Vec<String> {
    svc.pointer(pointer)
        .and_then(Value::as_array)
        .map(|l| {
            l.iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}

/// The IP-family fields of a service being created, after upstream's defaulting rules.
#[derive(Debug, PartialEq)]
struct FamilyPlan {
    policy: String,
    families: Vec<Family>,
    /// Requested addresses, index-aligned with `families` (`None` entries are allocated).
    cluster_ips: Vec<String>,
}

/// Defaults and checks `ipFamilyPolicy`, `ipFamilies` and `clusterIPs` against the cluster's
/// ranges the way upstream's service REST allocator does before it allocates anything.
fn plan_families(ranges: &ServiceIpRanges, spec: &Value) -> Result<FamilyPlan, Vec<FieldError>> {
    let spec_path = Path::new("spec");
    let ips_path = spec_path.child("clusterIPs");
    let families_path = spec_path.child("ipFamilies");
    let policy_path = spec_path.child("ipFamilyPolicy");
    let cluster_ip = spec.get("clusterIP").and_then(Value::as_str).unwrap_or("");
    let mut cluster_ips = string_list(spec, "/clusterIPs");
    if cluster_ips.is_empty() && !cluster_ip.is_empty() {
        cluster_ips.push(cluster_ip.to_string());
    }
    let headless = cluster_ips.first().is_some_and(|ip| ip == "None");
    let selectorless = spec
        .get("selector")
        .and_then(Value::as_object)
        .is_none_or(|s| s.is_empty());
    let policy = match spec.get("ipFamilyPolicy").and_then(Value::as_str) {
        Some(p) => p.to_string(),
        None if headless && selectorless => "RequireDualStack".to_string(),
        None => "SingleStack".to_string(),
    };
    let mut errs = Vec::new();
    let mut families = Vec::new();
    for (i, name) in string_list(spec, "/ipFamilies").iter().enumerate() {
        match Family::parse(name) {
            Some(f) => families.push(f),
            None => errs.push(FieldError::not_supported(
                &families_path.index(i),
                name.as_str(),
                &["IPv4", "IPv6"],
            )),
        }
    }
    if policy == "SingleStack" {
        if cluster_ips.len() == 2 {
            errs.push(FieldError::invalid(
                &policy_path,
                policy.as_str(),
                "must be 'RequireDualStack' or 'PreferDualStack' when multiple cluster IPs are specified",
            ));
        }
        if families.len() == 2 {
            errs.push(FieldError::invalid(
                &policy_path,
                policy.as_str(),
                "must be 'RequireDualStack' or 'PreferDualStack' when multiple IP families are specified",
            ));
        }
    }
    if !headless {
        for (i, ip) in cluster_ips.iter().enumerate() {
            let Ok(parsed) = ip.parse::<IpAddr>() else {
                errs.push(FieldError::invalid(
                    &ips_path.index(i),
                    ip.as_str(),
                    "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
                ));
                continue;
            };
            let family = Family::of(parsed);
            match families.get(i) {
                Some(wanted) if *wanted != family => errs.push(FieldError::invalid(
                    &ips_path.index(i),
                    ip.as_str(),
                    &format!(
                        "expected an {} value as indicated by `ipFamilies[{i}]`",
                        wanted.name()
                    ),
                )),
                Some(_) => {}
                None if ranges.range(family).is_none() => errs.push(FieldError::invalid(
                    &ips_path.index(i),
                    json!(cluster_ips),
                    &format!("{} is not configured on this cluster", family.name()),
                )),
                None => families.push(family),
            }
        }
    }
    if !errs.is_empty() {
        return Err(errs);
    }
    if headless && selectorless {
        if families.is_empty() {
            families.push(ranges.primary_family());
        }
        if families.len() < 2 && policy != "SingleStack" {
            families.push(families[0].other());
        }
        return Ok(FamilyPlan {
            policy,
            families,
            cluster_ips,
        });
    }
    if policy == "RequireDualStack" && !ranges.is_dual_stack() {
        errs.push(FieldError::invalid(
            &policy_path,
            policy.as_str(),
            "this cluster is not configured for dual-stack services",
        ));
    }
    for (i, family) in families.iter().enumerate() {
        if ranges.range(*family).is_none() {
            errs.push(FieldError::invalid(
                &families_path.index(i),
                family.name(),
                "not configured on this cluster",
            ));
        }
    }
    if !errs.is_empty() {
        return Err(errs);
    }
    if families.is_empty() {
        families.push(ranges.primary_family());
    }
    if policy != "SingleStack" && families.len() == 1 && ranges.is_dual_stack() {
        families.push(families[0].other());
    }
    Ok(FamilyPlan {
        policy,
        families,
        cluster_ips,
    })
}

/// Claims `requested`, or a random free address of `range` when nothing was requested.
async fn allocate_ip(
    server: &ApiServer,
    range: &IpRange,
    requested: Option<&str>,
    owner: &str,
    dry_run: bool,
    path: &Path,
) -> ApiResult<Result<String, FieldError>> {
    let Some(requested) = requested else {
        let reserved = server.config.service_ip_range.first();
        let start: u128 = rand::rng().random();
        for i in 0..PROBES {
            let candidate = range.nth(start.wrapping_add(i.into()));
            if candidate == reserved {
                continue;
            }
            let candidate = candidate.to_string();
            if dry_run || claim(server, &ip_key(server, &candidate), owner).await? {
                return Ok(Ok(candidate));
            }
        }
        return Err(ApiError::internal(format!(
            "failed to allocate a serviceIP: range is full ({})",
            range.family.name()
        )));
    };
    let in_range = requested.parse().is_ok_and(|ip| range.contains(ip));
    if !in_range {
        return Ok(Err(FieldError::invalid(
            path,
            requested,
            "failed to allocate IP: the provided IP is not in the valid range",
        )));
    }
    if !dry_run && !claim(server, &ip_key(server, requested), owner).await? {
        return Ok(Err(FieldError::invalid(
            path,
            requested,
            &format!("failed to allocate IP {requested}: provided IP is already allocated"),
        )));
    }
    Ok(Ok(requested.to_string()))
}

/// Allocates the cluster IPs (one per IP family) and node ports a new service needs.
pub async fn allocate(
    server: &ApiServer,
    def: &ResourceDef,
    svc: &mut Value,
    dry_run: bool,
) -> ApiResult<Allocation> {
    let mut allocation = Allocation::default();
    let name = meta::name(svc).to_string();
    let owner = format!("{}/{name}", meta::namespace(svc));
    let svc_type = meta::str_at(svc, "/spec/type").to_string();
    if svc_type != "ExternalName" {
        let ranges = server.config.service_ip_range;
        let plan = plan_families(&ranges, &svc["spec"])
            .map_err(|e| ApiError::from_field_errors(def, &name, &e))?;
        let ips = if plan.cluster_ips.first().is_some_and(|ip| ip == "None") {
            vec!["None".to_string()]
        } else {
            let mut ips = Vec::with_capacity(plan.families.len());
            for (i, family) in plan.families.iter().enumerate() {
                let Some(range) = ranges.range(*family) else {
                    continue;
                };
                let path = Path::new("spec").child("clusterIPs").index(i);
                let requested = plan.cluster_ips.get(i).map(String::as_str);
                let got = allocate_ip(server, range, requested, &owner, dry_run, &path).await;
                match got {
                    Ok(Ok(ip)) => {
                        allocation.keys.push(ip_key(server, &ip));
                        ips.push(ip);
                    }
                    Ok(Err(field)) => {
                        allocation.release(server).await;
                        return Err(ApiError::from_field_errors(def, &name, &[field]));
                    }
                    Err(err) => {
                        allocation.release(server).await;
                        return Err(err);
                    }
                }
            }
            ips
        };
        let families: Vec<&str> = plan.families.iter().map(|f| f.name()).collect();
        svc["spec"]["clusterIP"] = json!(ips.first().cloned().unwrap_or_default());
        svc["spec"]["clusterIPs"] = json!(ips);
        svc["spec"]["ipFamilies"] = json!(families);
        svc["spec"]["ipFamilyPolicy"] = json!(plan.policy);
    }
    if svc_type == "NodePort" || svc_type == "LoadBalancer" {
        let range = server.config.node_port_range;
        let ports = svc
            .pointer_mut("/spec/ports")
            .and_then(Value::as_array_mut)
            .map(std::mem::take)
            .unwrap_or_default();
        let mut out = Vec::with_capacity(ports.len());
        for (i, mut port) in ports.into_iter().enumerate() {
            let port_path = Path::new("spec").child("ports").index(i).child("nodePort");
            let wanted = port.get("nodePort").and_then(Value::as_i64).unwrap_or(0);
            let chosen = if wanted != 0 {
                if wanted < range.first as i64 || wanted > range.last as i64 {
                    allocation.release(server).await;
                    let why = format!("provided port is not in the valid range. The range of valid ports is {}-{}", range.first, range.last);
                    return Err(ApiError::from_field_errors(
                        def,
                        &name,
                        &[FieldError::invalid(&port_path, wanted, &why)],
                    ));
                }
                if !dry_run && !claim(server, &port_key(server, wanted), &owner).await? {
                    allocation.release(server).await;
                    return Err(ApiError::from_field_errors(
                        def,
                        &name,
                        &[FieldError::invalid(
                            &port_path,
                            wanted,
                            "provided port is already allocated",
                        )],
                    ));
                }
                wanted
            } else {
                let span = (range.last - range.first) as i64 + 1;
                let start: i64 = rand::rng().random_range(0..span);
                let mut found = None;
                for i in 0..span.min(512) {
                    let candidate = range.first as i64 + (start + i) % span;
                    if dry_run || claim(server, &port_key(server, candidate), &owner).await? {
                        found = Some(candidate);
                        break;
                    }
                }
                match found {
                    Some(p) => p,
                    None => {
                        allocation.release(server).await;
                        return Err(ApiError::internal(
                            "failed to allocate a nodePort: range is full",
                        ));
                    }
                }
            };
            allocation.keys.push(port_key(server, chosen));
            port["nodePort"] = json!(chosen);
            out.push(port);
        }
        svc["spec"]["ports"] = Value::Array(out);
    }
    Ok(allocation)
}

/// On update, keeps the allocations a client did not repeat (kubectl apply omits them).
pub fn keep_allocations(old: &Value, new: &mut Value) {
    for field in ["clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"] {
        let missing = new
            .pointer(&format!("/spec/{field}"))
            .is_none_or(|v| v.is_null() || v == "");
        if missing {
            if let Some(v) = old.pointer(&format!("/spec/{field}")) {
                new["spec"][field] = v.clone();
            }
        }
    }
    let old_ports: Vec<Value> = old
        .pointer("/spec/ports")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if let Some(ports) = new.pointer_mut("/spec/ports").and_then(Value::as_array_mut) {
        for port in ports {
            if port
                .get("nodePort")
                .is_some_and(|p| p.as_i64().unwrap_or(0) != 0)
            {
                continue;
            }
            let same = old_ports.iter().find(|o| {
                o.get("port") == port.get("port") && o.get("protocol") == port.get("protocol")
            });
            if let Some(np) = same.and_then(|o| o.get("nodePort")) {
                port["nodePort"] = np.clone();
            }
        }
    }
}

/// Gives back everything a deleted service held.
pub async fn release_all(server: &ApiServer, svc: &Value) {
    if let Some(ips) = svc.pointer("/spec/clusterIPs").and_then(Value::as_array) {
        for ip in ips
            .iter()
            .filter_map(Value::as_str)
            .filter(|ip| *ip != "None")
        {
            release_key(server, &ip_key(server, ip)).await;
        }
    }
    if let Some(ports) = svc.pointer("/spec/ports").and_then(Value::as_array) {
        for port in ports
            .iter()
            .filter_map(|p| p.get("nodePort").and_then(Value::as_i64))
        {
            release_key(server, &port_key(server, port)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dual() -> ServiceIpRanges {
        ServiceIpRanges::parse("10.96.0.0/16,fd00:96::/112").unwrap()
    }

    fn single() -> ServiceIpRanges {
        ServiceIpRanges::parse("10.96.0.0/16").unwrap()
    }

    #[test]
    fn dual_stack_ranges_parse() {
        let r = dual();
        assert!(r.is_dual_stack());
        assert_eq!(r.first().to_string(), "10.96.0.1");
        let v6 = r.range(Family::V6).unwrap();
        assert!(v6.contains("fd00:96::ffff".parse().unwrap()));
        assert!(!v6.contains("fd00:96::".parse().unwrap()));
        assert!(!v6.contains("fd00:97::1".parse().unwrap()));
        assert!(!v6.contains("10.96.0.5".parse().unwrap()));
        assert_eq!(v6.nth(0).to_string(), "fd00:96::1");
        assert!(ServiceIpRanges::parse("10.96.0.0/16,10.97.0.0/16").is_err());
        assert!(ServiceIpRanges::parse("fd00::/112,10.0.0.0/24,fd01::/112").is_err());
        assert!(IpRange::parse("fd00::/32").is_err());
    }

    #[test]
    fn families_default_from_the_cluster() {
        let spec = json!({"selector": {"a": "b"}});
        let plan = plan_families(&dual(), &spec).unwrap();
        assert_eq!(plan.policy, "SingleStack");
        assert_eq!(plan.families, vec![Family::V4]);
        let spec = json!({"selector": {"a": "b"}, "ipFamilyPolicy": "PreferDualStack"});
        assert_eq!(
            plan_families(&dual(), &spec).unwrap().families,
            vec![Family::V4, Family::V6]
        );
        assert_eq!(
            plan_families(&single(), &spec).unwrap().families,
            vec![Family::V4]
        );
        let spec = json!({"selector": {"a": "b"}, "clusterIP": "fd00:96::9"});
        assert_eq!(
            plan_families(&dual(), &spec).unwrap().families,
            vec![Family::V6]
        );
        let headless = json!({"clusterIP": "None"});
        let plan = plan_families(&single(), &headless).unwrap();
        assert_eq!(plan.policy, "RequireDualStack");
        assert_eq!(plan.families, vec![Family::V4, Family::V6]);
    }

    #[test]
    fn families_are_checked_against_the_cluster() {
        let spec = json!({"selector": {"a": "b"}, "ipFamilyPolicy": "RequireDualStack"});
        let errs = plan_families(&single(), &spec).unwrap_err();
        assert_eq!(errs[0].field, "spec.ipFamilyPolicy");
        assert!(errs[0].message().contains("not configured for dual-stack"));
        let spec = json!({"selector": {"a": "b"}, "ipFamilies": ["IPv6"]});
        let errs = plan_families(&single(), &spec).unwrap_err();
        assert_eq!(errs[0].field, "spec.ipFamilies[0]");
        let spec = json!({"selector": {"a": "b"}, "ipFamilies": ["IPv4", "IPv6"]});
        assert!(plan_families(&dual(), &spec).is_err());
        let spec =
            json!({"selector": {"a": "b"}, "ipFamilies": ["IPv4"], "clusterIP": "fd00:96::9"});
        let errs = plan_families(&dual(), &spec).unwrap_err();
        assert_eq!(errs[0].field, "spec.clusterIPs[0]");
    }

    #[test]
    fn ranges_parse() {
        let r = IpRange::parse("10.96.0.0/12").unwrap();
        assert_eq!(r.first().to_string(), "10.96.0.1");
        assert!(r.contains("10.100.3.4".parse().unwrap()));
        assert!(!r.contains("10.112.0.1".parse().unwrap()));
        assert!(!r.contains("10.111.255.255".parse().unwrap()));
        assert!(IpRange::parse("10.0.0.0").is_err());
        let p = PortRange::parse("30000-32767").unwrap();
        assert_eq!((p.first, p.last), (30000, 32767));
        assert!(PortRange::parse("5-1").is_err());
    }

    #[test]
    fn update_keeps_allocations() {
        let old = json!({"spec": {"clusterIP": "10.0.0.5", "clusterIPs": ["10.0.0.5"], "ports": [{"port": 80, "protocol": "TCP", "nodePort": 30080}]}});
        let mut new = json!({"spec": {"ports": [{"port": 80, "protocol": "TCP"}]}});
        keep_allocations(&old, &mut new);
        assert_eq!(new["spec"]["clusterIP"], "10.0.0.5");
        assert_eq!(new["spec"]["ports"][0]["nodePort"], 30080);
    }
}
