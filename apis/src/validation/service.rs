//! Services: ports, type, session affinity, cluster IPs and ExternalName rules.

use super::access::{self, Errors};
use super::field_error::FieldError;
use super::ip::{validate_ip, validate_non_special_ip};
use super::labels::validate_labels;
use super::metadata::{validate_object_meta, validate_object_meta_update, MetaRules};
use super::names::{
    is_dns1123_label, is_dns1123_subdomain, is_qualified_name, is_valid_port_num, NameRule,
};
use super::path::Path;
use super::probe::validate_port_num_or_name;
use super::workload::spec_of;
use serde_json::Value;

const RULES: MetaRules = MetaRules {
    namespaced: true,
    name: NameRule::Dns1035Label,
    kube_finalizers: true,
};

const PROTOCOLS: &[&str] = &["SCTP", "TCP", "UDP"];
const TYPES: &[&str] = &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"];
const KUBELET_PORT: i64 = 10250;

fn cluster_ips(spec: &Value) -> Vec<&str> {
    access::get(spec, "clusterIPs")
        .and_then(Value::as_array)
        .map(|l| l.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

fn is_headless(spec: &Value) -> bool {
    cluster_ips(spec).len() == 1 && cluster_ips(spec)[0] == "None"
}

fn validate_port(
    port: &Value,
    require_name: bool,
    names: &mut Vec<String>,
    path: &Path,
    errs: &mut Errors,
) {
    let name = access::str_or_empty(port, "name", path, errs);
    if require_name && name.is_empty() {
        errs.push(FieldError::required(&path.child("name"), ""));
    } else if !name.is_empty() {
        for msg in is_dns1123_label(name) {
            errs.push(FieldError::invalid(&path.child("name"), name, &msg));
        }
        if names.iter().any(|n| n == name) {
            errs.push(FieldError::duplicate(&path.child("name"), name));
        } else {
            names.push(name.to_string());
        }
    }
    let number = access::integer(port, "port", path, errs).unwrap_or(0);
    for msg in is_valid_port_num(number) {
        errs.push(FieldError::invalid(&path.child("port"), number, &msg));
    }
    let protocol = access::str_or_empty(port, "protocol", path, errs);
    if protocol.is_empty() {
        errs.push(FieldError::required(&path.child("protocol"), ""));
    } else if !PROTOCOLS.contains(&protocol) {
        errs.push(FieldError::not_supported(
            &path.child("protocol"),
            protocol,
            PROTOCOLS,
        ));
    }
    validate_port_num_or_name(
        access::get(port, "targetPort"),
        &path.child("targetPort"),
        errs,
    );
    if let Some(app) = access::string(port, "appProtocol", path, errs) {
        for msg in is_qualified_name(app) {
            errs.push(FieldError::invalid(&path.child("appProtocol"), app, &msg));
        }
    }
}

fn validate_cluster_ips(spec: &Value, path: &Path, errs: &mut Errors) {
    let ips_path = path.child("clusterIPs");
    let cluster_ip = access::str_or_empty(spec, "clusterIP", path, errs);
    let ips = cluster_ips(spec);
    let ips_value = || Value::from(ips.iter().map(|s| Value::from(*s)).collect::<Vec<_>>());
    if !cluster_ip.is_empty() {
        match ips.first() {
            None => errs.push(FieldError::required(&ips_path, "")),
            Some(first) if *first != cluster_ip => errs.push(FieldError::invalid(
                &ips_path,
                ips_value(),
                "first value must match `clusterIP`",
            )),
            Some(_) => {}
        }
    } else if !ips.is_empty() {
        errs.push(FieldError::invalid(
            &ips_path,
            ips_value(),
            "must be empty when `clusterIP` is not specified",
        ));
    }
    let families_path = path.child("ipFamilies");
    let mut seen: Vec<&str> = Vec::new();
    for (i, fam) in access::string_list(spec, "ipFamilies", path, errs)
        .into_iter()
        .enumerate()
    {
        if fam != "IPv4" && fam != "IPv6" {
            errs.push(FieldError::not_supported(
                &families_path.index(i),
                fam,
                &["IPv4", "IPv6"],
            ));
        }
        if seen.contains(&fam) {
            errs.push(FieldError::duplicate(&families_path.index(i), fam));
        }
        seen.push(fam);
    }
    if let Some(policy) = access::string(spec, "ipFamilyPolicy", path, errs) {
        let valid = ["PreferDualStack", "RequireDualStack", "SingleStack"];
        if !valid.contains(&policy) {
            errs.push(FieldError::not_supported(
                &path.child("ipFamilyPolicy"),
                policy,
                &valid,
            ));
        }
    }
    let mut parsed = Vec::with_capacity(ips.len());
    let mut all_valid = true;
    for (i, ip) in ips.iter().enumerate() {
        if i == 0 && *ip == "None" {
            if ips.len() > 1 {
                all_valid = false;
                errs.push(FieldError::invalid(
                    &ips_path,
                    ips_value(),
                    "'None' must be the first and only value",
                ));
            }
            continue;
        }
        match validate_ip(ip, &ips_path.index(i), errs) {
            Some(addr) => parsed.push((i, *ip, addr)),
            None => all_valid = false,
        }
    }
    if ips.len() > 2 {
        errs.push(FieldError::invalid(
            &ips_path,
            ips_value(),
            "may only hold up to 2 values",
        ));
    }
    if !all_valid {
        return;
    }
    if let [(_, _, a), (_, _, b), ..] = parsed.as_slice() {
        if a.is_ipv4() == b.is_ipv4() {
            errs.push(FieldError::invalid(
                &ips_path,
                ips_value(),
                "may specify no more than one IP for each IP family",
            ));
        }
    }
    // Each address must be of the family at the same index of `ipFamilies`.
    let families = access::get(spec, "ipFamilies").and_then(Value::as_array);
    for (i, ip, addr) in parsed {
        let want = families.and_then(|f| f.get(i)).and_then(Value::as_str);
        let expected = match want {
            Some("IPv4") if addr.is_ipv6() => "IPv4",
            Some("IPv6") if addr.is_ipv4() => "IPv6",
            _ => continue,
        };
        errs.push(FieldError::invalid(
            &ips_path.index(i),
            ip,
            &format!("expected an {expected} value as indicated by `ipFamilies[{i}]`"),
        ));
    }
}

fn validate_service_spec(spec: &Value, errs: &mut Errors) {
    let path = Path::new("spec");
    let ports_path = path.child("ports");
    let ports = access::array(spec, "ports", &path, errs);
    let svc_type = access::str_or_empty(spec, "type", &path, errs);
    let headless = is_headless(spec);
    if ports.is_empty() && !headless && svc_type != "ExternalName" {
        errs.push(FieldError::required(&ports_path, ""));
    }
    match svc_type {
        "LoadBalancer" | "NodePort" => {
            if svc_type == "LoadBalancer" {
                for (i, p) in ports.iter().enumerate() {
                    if access::get(p, "port").and_then(Value::as_i64) == Some(KUBELET_PORT) {
                        errs.push(FieldError::invalid(
                            &ports_path.index(i).child("port"),
                            KUBELET_PORT,
                            "may not expose port 10250 externally since it is used by kubelet",
                        ));
                    }
                }
            }
            if headless {
                errs.push(FieldError::invalid(
                    &path.child("clusterIPs").index(0),
                    "None",
                    &format!("may not be set to 'None' for {svc_type} services"),
                ));
            }
        }
        "ExternalName" => {
            if !cluster_ips(spec).is_empty() {
                errs.push(FieldError::forbidden(
                    &path.child("clusterIPs"),
                    "may not be set for ExternalName services",
                ));
            }
            if access::get(spec, "ipFamilies")
                .and_then(Value::as_array)
                .is_some_and(|f| !f.is_empty())
            {
                errs.push(FieldError::forbidden(
                    &path.child("ipFamilies"),
                    "may not be set for ExternalName services",
                ));
            }
            if access::get(spec, "ipFamilyPolicy").is_some() {
                errs.push(FieldError::forbidden(
                    &path.child("ipFamilyPolicy"),
                    "may not be set for ExternalName services",
                ));
            }
            let name = access::str_or_empty(spec, "externalName", &path, errs);
            let cname = name.strip_suffix('.').unwrap_or(name);
            if cname.is_empty() {
                errs.push(FieldError::required(&path.child("externalName"), ""));
            } else {
                for msg in is_dns1123_subdomain(cname) {
                    errs.push(FieldError::invalid(
                        &path.child("externalName"),
                        cname,
                        &msg,
                    ));
                }
            }
        }
        _ => {}
    }
    let mut names = Vec::new();
    for (i, p) in ports.iter().enumerate() {
        validate_port(p, ports.len() > 1, &mut names, &ports_path.index(i), errs);
    }
    validate_labels(spec, "selector", &path, errs);
    let affinity = access::str_or_empty(spec, "sessionAffinity", &path, errs);
    if affinity.is_empty() {
        errs.push(FieldError::required(&path.child("sessionAffinity"), ""));
    } else if affinity != "ClientIP" && affinity != "None" {
        errs.push(FieldError::not_supported(
            &path.child("sessionAffinity"),
            affinity,
            &["ClientIP", "None"],
        ));
    }
    if affinity != "ClientIP" && access::get(spec, "sessionAffinityConfig").is_some() {
        errs.push(FieldError::forbidden(
            &path.child("sessionAffinityConfig"),
            &format!("must not be set when session affinity is {affinity}"),
        ));
    }
    validate_cluster_ips(spec, &path, errs);
    let ext_path = path.child("externalIPs");
    for (i, ip) in access::string_list(spec, "externalIPs", &path, errs)
        .into_iter()
        .enumerate()
    {
        if let Some(parsed) = validate_ip(ip, &ext_path.index(i), errs) {
            validate_non_special_ip(parsed, ip, &ext_path.index(i), errs);
        }
    }
    if svc_type.is_empty() {
        errs.push(FieldError::required(&path.child("type"), ""));
    } else if !TYPES.contains(&svc_type) {
        errs.push(FieldError::not_supported(
            &path.child("type"),
            svc_type,
            TYPES,
        ));
    }
    let mut node_ports: Vec<(String, i64)> = Vec::new();
    let mut port_keys: Vec<(String, i64)> = Vec::new();
    for (i, p) in ports.iter().enumerate() {
        let pp = ports_path.index(i);
        let protocol = access::get(p, "protocol")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let node_port = access::get(p, "nodePort")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        if svc_type == "ClusterIP" && node_port != 0 {
            errs.push(FieldError::forbidden(
                &pp.child("nodePort"),
                "may not be used when `type` is 'ClusterIP'",
            ));
        }
        if node_port != 0 {
            let key = (protocol.clone(), node_port);
            if node_ports.contains(&key) {
                errs.push(FieldError::duplicate(&pp.child("nodePort"), node_port));
            }
            node_ports.push(key);
        }
        let key = (
            protocol.clone(),
            access::get(p, "port").and_then(Value::as_i64).unwrap_or(0),
        );
        if port_keys.contains(&key) {
            errs.push(FieldError::duplicate(
                &pp,
                serde_json::json!({"port": key.1, "protocol": key.0}),
            ));
        }
        port_keys.push(key);
    }
    for key in ["externalTrafficPolicy", "internalTrafficPolicy"] {
        if let Some(policy) = access::string(spec, key, &path, errs) {
            if policy != "Cluster" && policy != "Local" {
                errs.push(FieldError::not_supported(
                    &path.child(key),
                    policy,
                    &["Cluster", "Local"],
                ));
            }
        }
    }
}

pub fn create(obj: &Value, errs: &mut Errors) {
    validate_object_meta(obj, RULES, errs);
    validate_service_spec(spec_of(obj), errs);
}

/// Upstream `ValidateServiceUpdate`: cluster IPs cannot change once allocated, except when the
/// Service moves to or from ExternalName.
pub fn update(new: &Value, old: &Value, errs: &mut Errors) {
    validate_object_meta_update(new, old, true, errs);
    let (ns, os) = (spec_of(new), spec_of(old));
    validate_service_spec(ns, errs);
    let external =
        |s: &Value| access::get(s, "type").and_then(Value::as_str) == Some("ExternalName");
    if external(ns) || external(os) {
        return;
    }
    let (new_ips, old_ips) = (cluster_ips(ns), cluster_ips(os));
    let path = Path::new("spec").child("clusterIPs");
    for (i, old_ip) in old_ips.iter().enumerate() {
        if let Some(new_ip) = new_ips.get(i) {
            if new_ip != old_ip {
                let value: Vec<Value> = new_ips.iter().map(|s| Value::from(*s)).collect();
                errs.push(FieldError::invalid(
                    &path.index(i),
                    value,
                    "may not change once set",
                ));
            }
        }
    }
}
