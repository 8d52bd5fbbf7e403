//! `kubectl get componentstatuses`: health of the control-plane components.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::column::{col, Column, NAME};
use super::fields;

pub(super) const COLUMNS: &[Column] = &[
    NAME,
    col("Status", "string", "Healthy, Unhealthy or Unknown.", 0),
    col("Message", "string", "Message from the health check.", 0),
    col("Error", "string", "Error from the health check.", 0),
];

pub(super) fn cells(cs: &Value, _now: DateTime<Utc>) -> Vec<Value> {
    let healthy = fields::array(cs, &["conditions"])
        .iter()
        .find(|c| fields::str(c, &["type"]) == "Healthy");
    let (status, message, error) = match healthy {
        Some(c) => (
            if fields::str(c, &["status"]) == "True" {
                "Healthy"
            } else {
                "Unhealthy"
            },
            fields::str(c, &["message"]),
            fields::str(c, &["error"]),
        ),
        None => ("Unknown", "", ""),
    };
    vec![
        fields::name(cs).into(),
        status.into(),
        message.into(),
        error.into(),
    ]
}

#[cfg(test)]
mod tests {
    use super::super::test_support::now;
    use super::*;
    use serde_json::json;

    #[test]
    fn component_rows() {
        let etcd = json!({"metadata": {"name": "etcd-0"},
            "conditions": [{"type": "Healthy", "status": "True", "message": "ok"}]});
        assert_eq!(
            cells(&etcd, now()),
            vec![json!("etcd-0"), json!("Healthy"), json!("ok"), json!("")]
        );
        let down = json!({"metadata": {"name": "scheduler"},
            "conditions": [{"type": "Healthy", "status": "False", "error": "refused"}]});
        assert_eq!(
            cells(&down, now())[1..],
            [json!("Unhealthy"), json!(""), json!("refused")]
        );
        assert_eq!(cells(&json!({}), now())[1], json!("Unknown"));
    }
}
