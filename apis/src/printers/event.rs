//! `kubectl get events`, for both core/v1 and events.k8s.io/v1 Events. Upstream serves both
//! from one internal type, so both print the same columns; the events.k8s.io field names
//! (regarding, note, deprecated*) are read in place of the core ones.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::column::{col, Column, NAME};
use super::{duration, fields};

pub(super) const COLUMNS: &[Column] = &[
    col(
        "Last Seen",
        "string",
        "Time since the event last occurred.",
        0,
    ),
    col("Type", "string", "Normal or Warning.", 0),
    col(
        "Reason",
        "string",
        "Short machine-readable reason for the event.",
        0,
    ),
    col(
        "Object",
        "string",
        "The object the event is about, as kind/name.",
        0,
    ),
    col(
        "Subobject",
        "string",
        "Field path within the object, e.g. a container.",
        1,
    ),
    col(
        "Source",
        "string",
        "The component (and host) that reported the event.",
        1,
    ),
    col(
        "Message",
        "string",
        "Human-readable description of the event.",
        0,
    ),
    col(
        "First Seen",
        "string",
        "Time since the event first occurred.",
        1,
    ),
    col(
        "Count",
        "string",
        "How many times the event has occurred.",
        1,
    ),
    Column {
        priority: 1,
        ..NAME
    },
];

/// Where each field lives in one of the two Event schemas.
struct Schema {
    involved_object: &'static str,
    message: &'static str,
    source: &'static str,
    first_timestamp: &'static str,
    last_timestamp: &'static str,
    count: &'static str,
    reporting_controller: &'static str,
}

const CORE: Schema = Schema {
    involved_object: "involvedObject",
    message: "message",
    source: "source",
    first_timestamp: "firstTimestamp",
    last_timestamp: "lastTimestamp",
    count: "count",
    reporting_controller: "reportingComponent",
};

const EVENTS_K8S_IO: Schema = Schema {
    involved_object: "regarding",
    message: "note",
    source: "deprecatedSource",
    first_timestamp: "deprecatedFirstTimestamp",
    last_timestamp: "deprecatedLastTimestamp",
    count: "deprecatedCount",
    reporting_controller: "reportingController",
};

pub(super) fn cells(ev: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let s = if is_events_k8s_io(ev) {
        &EVENTS_K8S_IO
    } else {
        &CORE
    };
    let since = |path: &[&str]| fields::time(ev, path).map(|t| duration::since(Some(t), now));

    let first_seen = since(&[s.first_timestamp])
        .unwrap_or_else(|| duration::since(fields::time(ev, &["eventTime"]), now));
    let mut last_seen = since(&[s.last_timestamp]).unwrap_or_else(|| first_seen.clone());
    let mut count = fields::int(ev, &[s.count]);
    if fields::is_set(ev, &["series"]) {
        last_seen = duration::since(fields::time(ev, &["series", "lastObservedTime"]), now);
        count = fields::int(ev, &["series", "count"]);
    } else if count == 0 {
        count = 1;
    }

    let kind = fields::str(ev, &[s.involved_object, "kind"]).to_lowercase();
    let object_name = fields::str(ev, &[s.involved_object, "name"]);
    let target = if object_name.is_empty() {
        kind
    } else {
        format!("{kind}/{object_name}")
    };

    let component = first_non_empty(
        fields::str(ev, &[s.source, "component"]),
        fields::str(ev, &[s.reporting_controller]),
    );
    let host = first_non_empty(
        fields::str(ev, &[s.source, "host"]),
        fields::str(ev, &["reportingInstance"]),
    );
    let source = if host.is_empty() {
        component.to_owned()
    } else {
        format!("{component}, {host}")
    };

    vec![
        last_seen.into(),
        fields::str(ev, &["type"]).into(),
        fields::str(ev, &["reason"]).into(),
        target.into(),
        fields::str(ev, &[s.involved_object, "fieldPath"]).into(),
        source.into(),
        fields::str(ev, &[s.message]).trim().into(),
        first_seen.into(),
        count.into(),
        fields::name(ev).into(),
    ]
}

/// Whether the object uses the events.k8s.io field names: by apiVersion, or, lacking one,
/// by having `regarding` or `note` but no `involvedObject`.
fn is_events_k8s_io(ev: &Value) -> bool {
    match fields::str(ev, &["apiVersion"]) {
        "" => {
            !fields::is_set(ev, &["involvedObject"])
                && (fields::is_set(ev, &["regarding"]) || fields::is_set(ev, &["note"]))
        }
        api_version => api_version.starts_with("events.k8s.io/"),
    }
}

/// `a` unless it is empty, else `b`.
fn first_non_empty<'a>(a: &'a str, b: &'a str) -> &'a str {
    if a.is_empty() {
        b
    } else {
        a
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{ago, now};
    use super::*;
    use serde_json::json;

    #[test]
    fn core_event() {
        let ev = json!({
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": "web-1.17d8a3f0c2b1e4a5", "namespace": "default"},
            "involvedObject": {"kind": "Pod", "name": "web-1",
                               "fieldPath": "spec.containers{web}"},
            "reason": "BackOff",
            "message": "Back-off restarting failed container web\n",
            "source": {"component": "kubelet", "host": "node-1"},
            "firstTimestamp": ago(3600),
            "lastTimestamp": ago(30),
            "count": 14,
            "type": "Warning"
        });
        assert_eq!(
            cells(&ev, now()),
            vec![
                json!("30s"),
                json!("Warning"),
                json!("BackOff"),
                json!("pod/web-1"),
                json!("spec.containers{web}"),
                json!("kubelet, node-1"),
                json!("Back-off restarting failed container web"),
                json!("60m"),
                json!(14),
                json!("web-1.17d8a3f0c2b1e4a5"),
            ]
        );
    }

    #[test]
    fn events_k8s_io_event_with_series() {
        let ev = json!({
            "apiVersion": "events.k8s.io/v1",
            "kind": "Event",
            "metadata": {"name": "node-1.17d8"},
            "eventTime": ago(600),
            "series": {"count": 4, "lastObservedTime": ago(150)},
            "reportingController": "kubelet",
            "reportingInstance": "node-1",
            "action": "Starting",
            "reason": "Starting",
            "regarding": {"kind": "Node", "name": "node-1"},
            "note": "Starting kubelet.",
            "type": "Normal"
        });
        assert_eq!(
            cells(&ev, now()),
            vec![
                json!("2m30s"),
                json!("Normal"),
                json!("Starting"),
                json!("node/node-1"),
                json!(""),
                json!("kubelet, node-1"),
                json!("Starting kubelet."),
                json!("10m"),
                json!(4),
                json!("node-1.17d8"),
            ]
        );
    }

    #[test]
    fn schema_detection() {
        assert!(is_events_k8s_io(&json!({"regarding": {"kind": "Pod"}})));
        assert!(!is_events_k8s_io(
            &json!({"involvedObject": {"kind": "Pod"}})
        ));
        assert!(!is_events_k8s_io(&json!({"apiVersion": "v1", "note": "x"})));
        let bare = json!({"regarding": {"kind": "Pod", "name": "p"}, "note": "hi"});
        let c = cells(&bare, now());
        assert_eq!(c[3], json!("pod/p"));
        assert_eq!(c[6], json!("hi"));
    }

    #[test]
    fn singleton_without_times() {
        let ev = json!({"metadata": {"name": "e"}, "involvedObject": {"kind": "Namespace"}});
        let c = cells(&ev, now());
        assert_eq!(c[0], json!("<unknown>"));
        assert_eq!(c[3], json!("namespace"));
        assert_eq!(c[7], json!("<unknown>"));
        assert_eq!(c[8], json!(1));
    }
}
