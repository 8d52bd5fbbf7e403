//! Defaulting of the `discovery.k8s.io` group: EndpointSlice ports.

use serde_json::Value;

use super::fields::{default_unset, for_each_object, Object};

/// Defaults a `discovery.k8s.io` object of `kind`; only EndpointSlice has defaults.
pub(crate) fn apply(kind: &str, obj: &mut Object) {
    if kind == "EndpointSlice" {
        for_each_object(obj, "ports", |port| {
            default_unset(port, "name", Value::String(String::new()));
            default_unset(port, "protocol", Value::from("TCP"));
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ports_get_empty_name_and_tcp() {
        let mut slice = json!({"addressType": "IPv4", "endpoints": [], "ports": [{"port": 80}, {"name": "dns", "port": 53, "protocol": "UDP"}]});
        apply("EndpointSlice", slice.as_object_mut().unwrap());
        assert_eq!(
            slice,
            json!({"addressType": "IPv4", "endpoints": [], "ports": [
                {"port": 80, "name": "", "protocol": "TCP"},
                {"name": "dns", "port": 53, "protocol": "UDP"}
            ]})
        );
    }
}
