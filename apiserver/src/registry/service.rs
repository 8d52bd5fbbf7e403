//! Service-specific behaviour: cluster IPs from `--service-cluster-ip-range` and node ports
//! from `--service-node-port-range`. Each allocation is an etcd key created only if absent, so
//! two apiserver replicas can never hand out the same address or port.

use std::net::Ipv4Addr;

use rand::Rng;
use serde_json::{json, Value};

use super::meta;
use crate::{
    errors::{ApiError, ApiResult},
    server::ApiServer,
    storage::StorageError,
};

/// An IPv4 service range.
#[derive(Debug, Clone, Copy)]
pub struct IpRange {
    base: u32,
    size: u32,
}

impl IpRange {
    pub fn parse(cidr: &str) -> Result<IpRange, String> {
        let (ip, bits) = cidr
            .split_once('/')
            .ok_or_else(|| format!("{cidr:?} is not a CIDR"))?;
        let ip: Ipv4Addr = ip.parse().map_err(|e| format!("{cidr:?}: {e}"))?;
        let bits: u32 = bits.parse().map_err(|e| format!("{cidr:?}: {e}"))?;
        if !(8..=30).contains(&bits) {
            return Err(format!("{cidr:?}: prefix length must be between 8 and 30"));
        }
        let size = 1u32 << (32 - bits);
        Ok(IpRange {
            base: u32::from(ip) & !(size - 1),
            size,
        })
    }

    /// The first usable address: the `kubernetes` service's.
    pub fn first(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.base + 1)
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        let ip = u32::from(ip);
        ip > self.base && ip < self.base + self.size - 1
    }

    fn nth(&self, n: u32) -> Ipv4Addr {
        Ipv4Addr::from(self.base + 1 + n % (self.size - 2))
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

fn invalid(field: &str, value: Value, why: &str) -> ApiError {
    ApiError::bad_request(format!("{field}: Invalid value: {value}: {why}"))
}

/// Allocates the cluster IP and node ports a new service needs.
pub async fn allocate(
    server: &ApiServer,
    svc: &mut Value,
    _old: Option<&Value>,
    dry_run: bool,
) -> ApiResult<Allocation> {
    let mut allocation = Allocation::default();
    let owner = format!("{}/{}", meta::namespace(svc), meta::name(svc));
    let svc_type = meta::str_at(svc, "/spec/type").to_string();
    if svc_type != "ExternalName" {
        let requested = meta::str_at(svc, "/spec/clusterIP").to_string();
        if requested != "None" {
            let ip = if requested.is_empty() {
                let range = server.config.service_ip_range;
                let start: u32 = rand::rng().random();
                let mut found = None;
                for i in 0..256u32 {
                    let candidate = range.nth(start.wrapping_add(i)).to_string();
                    if candidate == range.first().to_string() {
                        continue;
                    }
                    if dry_run || claim(server, &ip_key(server, &candidate), &owner).await? {
                        found = Some(candidate);
                        break;
                    }
                }
                found.ok_or_else(|| {
                    ApiError::internal("failed to allocate a serviceIP: range is full")
                })?
            } else {
                let parsed: Ipv4Addr = requested.parse().map_err(|_| {
                    invalid(
                        "spec.clusterIPs",
                        json!([requested]),
                        "must be a valid IP address",
                    )
                })?;
                if !server.config.service_ip_range.contains(parsed) {
                    return Err(invalid(
                        "spec.clusterIPs",
                        json!([requested]),
                        "failed to allocate IP: the provided IP is not in the valid range",
                    ));
                }
                if !dry_run && !claim(server, &ip_key(server, &requested), &owner).await? {
                    return Err(invalid(
                        "spec.clusterIPs",
                        json!([requested]),
                        &format!(
                            "failed to allocate IP {requested}: provided IP is already allocated"
                        ),
                    ));
                }
                requested
            };
            allocation.keys.push(ip_key(server, &ip));
            svc["spec"]["clusterIP"] = json!(ip);
            svc["spec"]["clusterIPs"] = json!([ip]);
            svc["spec"]["ipFamilies"] = json!(["IPv4"]);
            svc["spec"]["ipFamilyPolicy"] = json!("SingleStack");
        } else {
            svc["spec"]["clusterIPs"] = json!(["None"]);
            svc["spec"]["ipFamilies"] = json!(["IPv4"]);
            svc["spec"]["ipFamilyPolicy"] = json!("SingleStack");
        }
    }
    if svc_type == "NodePort" || svc_type == "LoadBalancer" {
        let range = server.config.node_port_range;
        let ports = svc
            .pointer_mut("/spec/ports")
            .and_then(Value::as_array_mut)
            .map(std::mem::take)
            .unwrap_or_default();
        let mut out = Vec::with_capacity(ports.len());
        for mut port in ports {
            let wanted = port.get("nodePort").and_then(Value::as_i64).unwrap_or(0);
            let chosen = if wanted != 0 {
                if wanted < range.first as i64 || wanted > range.last as i64 {
                    allocation.release(server).await;
                    return Err(invalid(
                        "spec.ports[].nodePort",
                        json!(wanted),
                        &format!("provided port is not in the valid range. The range of valid ports is {}-{}", range.first, range.last),
                    ));
                }
                if !dry_run && !claim(server, &port_key(server, wanted), &owner).await? {
                    allocation.release(server).await;
                    return Err(invalid(
                        "spec.ports[].nodePort",
                        json!(wanted),
                        "provided port is already allocated",
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

    #[test]
    fn ranges_parse() {
        let r = IpRange::parse("10.96.0.0/12").unwrap();
        assert_eq!(r.first().to_string(), "10.96.0.1");
        assert!(r.contains("10.100.3.4".parse().unwrap()));
        assert!(!r.contains("10.112.0.1".parse().unwrap()));
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
