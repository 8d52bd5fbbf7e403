//! `kubectl get endpoints`: up to three "ip:port" endpoints, then "+ N more...".

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::column::{col, Column, AGE, NAME};
use super::fields;

pub(super) const COLUMNS: &[Column] = &[
    NAME,
    col(
        "Endpoints",
        "string",
        "Addresses and ports backing the service.",
        0,
    ),
    AGE,
];

/// How many endpoints are listed before the rest are summarised as a count.
const SHOWN: usize = 3;

pub(super) fn cells(ep: &Value, now: DateTime<Utc>) -> Vec<Value> {
    vec![
        fields::name(ep).into(),
        format_endpoints(ep).into(),
        fields::age(ep, now).into(),
    ]
}

/// Every (address, port) pair across subsets; subsets without ports list bare addresses.
fn format_endpoints(ep: &Value) -> String {
    let subsets = fields::array(ep, &["subsets"]);
    if subsets.is_empty() {
        return "<none>".to_owned();
    }
    let mut list: Vec<String> = Vec::new();
    let mut count = 0;
    for subset in subsets {
        let addresses = fields::array(subset, &["addresses"]);
        let ips = addresses.iter().map(|a| fields::str(a, &["ip"]));
        let ports = fields::array(subset, &["ports"]);
        if ports.is_empty() {
            count += addresses.len();
            list.extend(
                ips.take(SHOWN.saturating_sub(list.len()))
                    .map(str::to_owned),
            );
            continue;
        }
        for port in ports {
            let port = fields::int(port, &["port"]);
            count += addresses.len();
            let room = SHOWN.saturating_sub(list.len());
            list.extend(ips.clone().take(room).map(|ip| join_host_port(ip, port)));
        }
    }
    let joined = list.join(",");
    if count > SHOWN {
        format!("{joined} + {} more...", count - SHOWN)
    } else {
        joined
    }
}

/// "host:port", bracketing IPv6 hosts as Go's `net.JoinHostPort` does.
fn join_host_port(host: &str, port: i64) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{ago, now};
    use super::*;
    use serde_json::json;

    #[test]
    fn lists_three_then_counts() {
        let ep = json!({
            "metadata": {"name": "web", "creationTimestamp": ago(7200)},
            "subsets": [{
                "addresses": [{"ip": "10.244.1.5"}, {"ip": "10.244.2.8"}],
                "ports": [{"name": "http", "port": 8080, "protocol": "TCP"},
                          {"name": "metrics", "port": 9090, "protocol": "TCP"}]
            }]
        });
        assert_eq!(
            cells(&ep, now()),
            vec![
                json!("web"),
                json!("10.244.1.5:8080,10.244.2.8:8080,10.244.1.5:9090 + 1 more..."),
                json!("120m"),
            ]
        );
    }

    #[test]
    fn none_headless_and_ipv6() {
        assert_eq!(
            format_endpoints(&json!({"metadata": {"name": "x"}})),
            "<none>"
        );
        let headless = json!({"subsets": [{"addresses": [{"ip": "10.0.0.1"}]}]});
        assert_eq!(format_endpoints(&headless), "10.0.0.1");
        let v6 = json!({"subsets": [{"addresses": [{"ip": "fd00::1"}], "ports": [{"port": 80}]}]});
        assert_eq!(format_endpoints(&v6), "[fd00::1]:80");
    }
}
