//! `events.k8s.io/v1` Events are another view of the core/v1 Events in storage, as upstream
//! serves them: these functions convert between the two field layouts.

use serde_json::{Map, Value};

/// Field renames between core/v1 (left) and events.k8s.io/v1 (right).
const RENAMES: &[(&str, &str)] = &[
    ("involvedObject", "regarding"),
    ("message", "note"),
    ("reportingComponent", "reportingController"),
    ("source", "deprecatedSource"),
    ("firstTimestamp", "deprecatedFirstTimestamp"),
    ("lastTimestamp", "deprecatedLastTimestamp"),
    ("count", "deprecatedCount"),
];

fn rename(obj: &Value, api_version: &str, to_events_api: bool) -> Value {
    let Some(map) = obj.as_object() else {
        return obj.clone();
    };
    let mut out = Map::new();
    for (k, v) in map {
        let renamed = RENAMES.iter().find_map(|(core, events)| {
            let (from, to) = if to_events_api {
                (core, events)
            } else {
                (events, core)
            };
            (k == from).then_some(*to)
        });
        out.insert(renamed.unwrap_or(k).to_string(), v.clone());
    }
    out.insert("apiVersion".into(), Value::String(api_version.into()));
    out.insert("kind".into(), Value::String("Event".into()));
    Value::Object(out)
}

/// A stored core/v1 Event as an events.k8s.io/v1 Event.
pub fn to_events_api(core: &Value) -> Value {
    rename(core, "events.k8s.io/v1", true)
}

/// An events.k8s.io/v1 Event in its stored core/v1 form.
pub fn to_core(event: &Value) -> Value {
    let mut core = rename(event, "v1", false);
    // core/v1 readers (kubectl describe) expect a reporting source and timestamps.
    if core.get("source").is_none() {
        if let Some(c) = core.get("reportingComponent").cloned() {
            core["source"] = serde_json::json!({ "component": c });
        }
    }
    if core.get("lastTimestamp").is_none() {
        if let Some(t) = core.get("eventTime").and_then(Value::as_str) {
            let seconds = t
                .split('.')
                .next()
                .unwrap_or(t)
                .trim_end_matches('Z')
                .to_string()
                + "Z";
            core["firstTimestamp"] = Value::String(seconds.clone());
            core["lastTimestamp"] = Value::String(seconds);
        }
    }
    core
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn round_trips_field_names() {
        let e = json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "x"},
            "regarding": {"kind": "Pod", "name": "p"}, "note": "hi", "reason": "Scheduled",
            "reportingController": "default-scheduler", "eventTime": "2024-01-01T00:00:00.123456Z"});
        let core = to_core(&e);
        assert_eq!(core["involvedObject"]["name"], "p");
        assert_eq!(core["message"], "hi");
        assert_eq!(core["source"]["component"], "default-scheduler");
        assert_eq!(core["lastTimestamp"], "2024-01-01T00:00:00Z");
        let back = to_events_api(&core);
        assert_eq!(back["regarding"]["name"], "p");
        assert_eq!(back["note"], "hi");
        assert_eq!(back["apiVersion"], "events.k8s.io/v1");
    }
}
