//! Defaults of probes and of the HTTP handlers shared by probes and lifecycle hooks.

use serde_json::Value;

use super::fields::{default_int, default_string, default_unset, object_mut, Object};

/// Fills the probe timings upstream assumes and defaults its handler.
pub(crate) fn apply(probe: &mut Object) {
    default_int(probe, "timeoutSeconds", 1);
    default_int(probe, "periodSeconds", 10);
    default_int(probe, "successThreshold", 1);
    default_int(probe, "failureThreshold", 3);
    if let Some(action) = object_mut(probe, "httpGet") {
        http_get(action);
    }
    if let Some(action) = object_mut(probe, "grpc") {
        default_unset(action, "service", Value::String(String::new()));
    }
}

/// An HTTP GET without path or scheme probes `/` over plain HTTP.
pub(crate) fn http_get(action: &mut Object) {
    default_string(action, "path", "/");
    default_string(action, "scheme", "HTTP");
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fills_timings_and_http_handler() {
        let mut probe = json!({"httpGet": {"port": 8080}, "periodSeconds": 5, "timeoutSeconds": 0});
        apply(probe.as_object_mut().unwrap());
        assert_eq!(
            probe,
            json!({
                "httpGet": {"port": 8080, "path": "/", "scheme": "HTTP"},
                "timeoutSeconds": 1,
                "periodSeconds": 5,
                "successThreshold": 1,
                "failureThreshold": 3
            })
        );
    }

    #[test]
    fn grpc_service_defaults_to_empty_string() {
        let mut probe = json!({"grpc": {"port": 9000}, "failureThreshold": 30});
        apply(probe.as_object_mut().unwrap());
        assert_eq!(probe["grpc"], json!({"port": 9000, "service": ""}));
        assert_eq!(probe["failureThreshold"], json!(30));
    }
}
