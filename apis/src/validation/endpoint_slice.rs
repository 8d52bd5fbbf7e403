//! EndpointSlices (`discovery.k8s.io`): address type, endpoint addresses and ports.

use super::access::{self, Errors};
use super::field_error::FieldError;
use super::ip::validate_non_special_ip;
use super::names::{is_dns1123_label, is_dns1123_subdomain, is_qualified_name};
use super::path::Path;
use serde_json::Value;
use std::net::{Ipv4Addr, Ipv6Addr};

const ADDRESS_TYPES: &[&str] = &["FQDN", "IPv4", "IPv6"];
const MAX_ENDPOINTS: usize = 1000;
const MAX_ADDRESSES: usize = 100;
const MAX_PORTS: usize = 20000;
const PROTOCOLS: &[&str] = &["SCTP", "TCP", "UDP"];

/// Upstream `IsFullyQualifiedDomainName`.
fn validate_fqdn(name: &str, path: &Path, errs: &mut Errors) {
    if name.is_empty() {
        errs.push(FieldError::required(path, ""));
        return;
    }
    let name = name.strip_suffix('.').unwrap_or(name);
    let msgs = is_dns1123_subdomain(name);
    if !msgs.is_empty() {
        errs.push(FieldError::invalid(path, name, &msgs.join(",")));
        return;
    }
    if name.split('.').count() < 2 {
        errs.push(FieldError::invalid(
            path,
            name,
            "should be a domain with at least two segments separated by dots",
        ));
        return;
    }
    for label in name.split('.') {
        let msgs = is_dns1123_label(label);
        if !msgs.is_empty() {
            errs.push(FieldError::invalid(path, label, &msgs.join(",")));
            return;
        }
    }
}

fn validate_address(address_type: &str, address: &str, path: &Path, errs: &mut Errors) {
    match address_type {
        "IPv4" => match address.parse::<Ipv4Addr>() {
            Ok(ip) => validate_non_special_ip(ip.into(), address, path, errs),
            Err(_) => errs.push(FieldError::invalid(
                path,
                address,
                "must be a valid IPv4 address",
            )),
        },
        "IPv6" => match address.parse::<Ipv6Addr>() {
            Ok(ip) => validate_non_special_ip(ip.into(), address, path, errs),
            Err(_) => errs.push(FieldError::invalid(
                path,
                address,
                "must be a valid IPv6 address",
            )),
        },
        "FQDN" => validate_fqdn(address, path, errs),
        _ => {}
    }
}

pub fn validate_body(obj: &Value, errs: &mut Errors) {
    let root = Path::default();
    let address_type = access::str_or_empty(obj, "addressType", &root, errs);
    if address_type.is_empty() {
        errs.push(FieldError::required(&Path::new("addressType"), ""));
    } else if !ADDRESS_TYPES.contains(&address_type) {
        errs.push(FieldError::not_supported(
            &Path::new("addressType"),
            address_type,
            ADDRESS_TYPES,
        ));
    }
    let eps_path = Path::new("endpoints");
    let endpoints = access::array(obj, "endpoints", &root, errs);
    if endpoints.len() > MAX_ENDPOINTS {
        errs.push(FieldError::too_many(
            &eps_path,
            endpoints.len(),
            MAX_ENDPOINTS,
        ));
    }
    for (i, ep) in endpoints.iter().enumerate() {
        let p = eps_path.index(i);
        let addr_path = p.child("addresses");
        let addresses = access::string_list(ep, "addresses", &p, errs);
        if addresses.is_empty() {
            errs.push(FieldError::required(
                &addr_path,
                "must contain at least 1 address",
            ));
        } else if addresses.len() > MAX_ADDRESSES {
            errs.push(FieldError::too_many(
                &addr_path,
                addresses.len(),
                MAX_ADDRESSES,
            ));
        }
        for (ai, address) in addresses.iter().enumerate() {
            validate_address(address_type, address, &addr_path.index(ai), errs);
        }
        if let Some(node) = access::string(ep, "nodeName", &p, errs) {
            for msg in is_dns1123_subdomain(node) {
                errs.push(FieldError::invalid(&p.child("nodeName"), node, &msg));
            }
        }
        if let Some(host) = access::string(ep, "hostname", &p, errs) {
            for msg in is_dns1123_label(host) {
                errs.push(FieldError::invalid(&p.child("hostname"), host, &msg));
            }
        }
    }
    let ports_path = Path::new("ports");
    let ports = access::array(obj, "ports", &root, errs);
    if ports.len() > MAX_PORTS {
        errs.push(FieldError::too_many(&ports_path, ports.len(), MAX_PORTS));
    }
    let mut names: Vec<&str> = Vec::new();
    for (i, port) in ports.iter().enumerate() {
        let p = ports_path.index(i);
        let name = access::str_or_empty(port, "name", &p, errs);
        if !name.is_empty() {
            for msg in is_dns1123_label(name) {
                errs.push(FieldError::invalid(&p.child("name"), name, &msg));
            }
        }
        if names.contains(&name) {
            errs.push(FieldError::duplicate(&p.child("name"), name));
        } else {
            names.push(name);
        }
        match access::string(port, "protocol", &p, errs) {
            None => errs.push(FieldError::required(&p.child("protocol"), "")),
            Some(proto) if !PROTOCOLS.contains(&proto) => errs.push(FieldError::not_supported(
                &p.child("protocol"),
                proto,
                PROTOCOLS,
            )),
            Some(_) => {}
        }
        if let Some(app) = access::string(port, "appProtocol", &p, errs) {
            for msg in is_qualified_name(app) {
                errs.push(FieldError::invalid(&p.child("appProtocol"), app, &msg));
            }
        }
    }
}
