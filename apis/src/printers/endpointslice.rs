//! `kubectl get endpointslices`: address type, up to three ports and three addresses.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::column::{col, Column, AGE, NAME};
use super::fields;

pub(super) const COLUMNS: &[Column] = &[
    NAME,
    col(
        "AddressType",
        "string",
        "Kind of addresses in the slice: IPv4, IPv6 or FQDN.",
        0,
    ),
    col(
        "Ports",
        "string",
        "Ports exposed by the slice's endpoints.",
        0,
    ),
    col(
        "Endpoints",
        "string",
        "Addresses of the slice's endpoints.",
        0,
    ),
    AGE,
];

/// How many items are listed before the rest are summarised as a count.
const SHOWN: usize = 3;

pub(super) fn cells(slice: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let ports = fields::array(slice, &["ports"]).iter().map(|p| {
        fields::opt_int(p, &["port"])
            .map(|n| n.to_string())
            .or_else(|| fields::opt_str(p, &["name"]).map(str::to_owned))
            .unwrap_or_else(|| "*".to_owned())
    });
    let addresses = fields::array(slice, &["endpoints"])
        .iter()
        .flat_map(|e| fields::array(e, &["addresses"]))
        .map(|a| a.as_str().unwrap_or("").to_owned());
    vec![
        fields::name(slice).into(),
        fields::str(slice, &["addressType"]).into(),
        list_with_more(ports).into(),
        list_with_more(addresses).into(),
        fields::age(slice, now).into(),
    ]
}

/// The first three items joined by ",", then "+ N more..."; "<unset>" when empty.
fn list_with_more(items: impl Iterator<Item = String>) -> String {
    let mut shown = Vec::new();
    let mut count = 0;
    for item in items {
        if shown.len() < SHOWN {
            shown.push(item);
        }
        count += 1;
    }
    let joined = shown.join(",");
    if count > SHOWN {
        format!("{joined} + {} more...", count - SHOWN)
    } else if joined.is_empty() {
        "<unset>".to_owned()
    } else {
        joined
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{ago, now};
    use super::*;
    use serde_json::json;

    #[test]
    fn slice_row() {
        let slice = json!({
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {"name": "web-abc12", "creationTimestamp": ago(20 * 60)},
            "addressType": "IPv4",
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}, {"name": "grpc"}, {}],
            "endpoints": [
                {"addresses": ["10.244.1.5"], "conditions": {"ready": true}},
                {"addresses": ["10.244.2.8"]},
                {"addresses": ["10.244.3.2"]},
                {"addresses": ["10.244.3.9"]},
                {"addresses": ["10.244.4.1"]}
            ]
        });
        assert_eq!(
            cells(&slice, now()),
            vec![
                json!("web-abc12"),
                json!("IPv4"),
                json!("8080,grpc,*"),
                json!("10.244.1.5,10.244.2.8,10.244.3.2 + 2 more..."),
                json!("20m"),
            ]
        );
    }

    #[test]
    fn empty_slice_is_unset() {
        let c = cells(
            &json!({"metadata": {"name": "s"}, "addressType": "IPv6"}),
            now(),
        );
        assert_eq!(c[2], json!("<unset>"));
        assert_eq!(c[3], json!("<unset>"));
    }
}
