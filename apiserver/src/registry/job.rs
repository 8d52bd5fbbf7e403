//! Job-specific behaviour: unless the user manages the selector, a Job selects its pods by a
//! label carrying its uid, which the pod template gets too.

use serde_json::{json, Value};

use super::meta;

/// Labels a Job's pods carry, keyed by the Job's uid and name.
fn labels(uid: &str, name: &str) -> [(&'static str, String); 4] {
    [
        ("batch.kubernetes.io/controller-uid", uid.to_string()),
        ("batch.kubernetes.io/job-name", name.to_string()),
        ("controller-uid", uid.to_string()),
        ("job-name", name.to_string()),
    ]
}

/// Generates the selector and template labels of a new Job (after its uid is set).
pub fn prepare_for_create(job: &mut Value) {
    if job.pointer("/spec/manualSelector").and_then(Value::as_bool) == Some(true) {
        return;
    }
    let uid = meta::uid(job).to_string();
    let name = meta::name(job).to_string();
    let Some(spec) = job.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    spec.insert(
        "selector".into(),
        json!({ "matchLabels": { "batch.kubernetes.io/controller-uid": uid } }),
    );
    let template = spec.entry("template").or_insert_with(|| json!({}));
    if !template.is_object() {
        return;
    }
    let template_meta = template
        .as_object_mut()
        .map(|t| t.entry("metadata").or_insert_with(|| json!({})));
    let Some(Value::Object(template_meta)) = template_meta else {
        return;
    };
    let label_map = template_meta.entry("labels").or_insert_with(|| json!({}));
    if let Some(label_map) = label_map.as_object_mut() {
        for (k, v) in labels(&uid, &name) {
            label_map.insert(k.into(), json!(v));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_selector_from_uid() {
        let mut job =
            json!({"metadata": {"name": "pi", "uid": "u-1"}, "spec": {"template": {"spec": {}}}});
        prepare_for_create(&mut job);
        assert_eq!(
            job["spec"]["selector"]["matchLabels"]["batch.kubernetes.io/controller-uid"],
            "u-1"
        );
        assert_eq!(
            job["spec"]["template"]["metadata"]["labels"]["job-name"],
            "pi"
        );
        let mut manual =
            json!({"metadata": {"uid": "u"}, "spec": {"manualSelector": true, "selector": {}}});
        prepare_for_create(&mut manual);
        assert_eq!(manual["spec"]["selector"], json!({}));
    }
}
