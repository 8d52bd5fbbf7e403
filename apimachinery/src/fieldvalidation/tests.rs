//! Field validation of built-in objects.

use super::*;
use serde_json::json;

const DEPLOYMENT: &str = "io.k8s.api.apps.v1.Deployment";
const CONFIG_MAP: &str = "io.k8s.api.core.v1.ConfigMap";

fn deployment() -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"app": "web"}, "annotations": {"a": "b"}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 1}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [{
                        "name": "app",
                        "image": "nginx",
                        "ports": [{"containerPort": 80}],
                        "resources": {"limits": {"cpu": "500m", "memory": 128974848}}
                    }]
                }
            }
        }
    })
}

#[test]
fn valid_objects_have_no_findings() {
    assert!(unknown_fields(DEPLOYMENT, &deployment()).is_empty());
    assert!(type_mismatches(DEPLOYMENT, &deployment()).is_empty());
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"},
        "data": {"anything": "goes"}, "binaryData": {"b": "aGVsbG8="}});
    assert!(unknown_fields(CONFIG_MAP, &cm).is_empty());
    assert!(type_mismatches(CONFIG_MAP, &cm).is_empty());
}

#[test]
fn unknown_top_level_field_has_no_leading_dot() {
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"},
        "dataa": {"k": "v"}});
    assert_eq!(unknown_fields(CONFIG_MAP, &cm), ["dataa"]);
}

#[test]
fn unknown_nested_fields_use_upstream_paths() {
    let mut dep = deployment();
    dep["spec"]["template"]["spec"]["containers"][0]["imagee"] = json!("typo");
    dep["metadata"]["nmae"] = json!("x");
    dep["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPortZ"] = json!(1);
    let mut found = unknown_fields(DEPLOYMENT, &dep);
    found.sort();
    assert_eq!(
        found,
        [
            "metadata.nmae",
            "spec.template.spec.containers[0].imagee",
            "spec.template.spec.containers[0].ports[0].containerPortZ",
        ]
    );
}

#[test]
fn open_subtrees_are_not_checked() {
    let revision = json!({
        "apiVersion": "apps/v1", "kind": "ControllerRevision",
        "metadata": {"name": "r", "managedFields": [{"manager": "m", "fieldsV1": {"f:spec": {}}}]},
        "revision": 1,
        "data": {"spec": {"whatever": {"deep": true}}}
    });
    assert!(unknown_fields("io.k8s.api.apps.v1.ControllerRevision", &revision).is_empty());
}

#[test]
fn documents_are_checked_in_order_with_duplicates() {
    let raw = br#"{"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {"replicas": 1, "unknownField": true, "replicas": 2,
                 "selector": {"matchLabels": {"app": "web", "app": "x"}}}}"#;
    let report = check(DEPLOYMENT, raw).unwrap();
    assert_eq!(
        report.strict,
        [
            StrictIssue::UnknownField("spec.unknownField".into()),
            StrictIssue::DuplicateField("spec.replicas".into()),
            StrictIssue::DuplicateField("spec.selector.matchLabels.app".into()),
        ]
    );
    assert_eq!(
        strict_decoding_error(&report.strict[..2]),
        "strict decoding error: unknown field \"spec.unknownField\", duplicate field \"spec.replicas\""
    );
    assert!(report.type_errors.is_empty());
    assert!(check(DEPLOYMENT, b"{").is_err());
}

#[test]
fn duplicate_fields_without_schema() {
    assert_eq!(
        duplicate_fields(br#"{"a": 1, "b": {"c": 1, "c": 2}, "a": [{"d": 1, "d": 1}]}"#),
        ["b.c", "a", "a[0].d"]
    );
    assert!(duplicate_fields(b"not json").is_empty());
}

#[test]
fn type_mismatches_use_go_wording() {
    let mut dep = deployment();
    dep["spec"]["replicas"] = json!("3");
    dep["spec"]["template"]["spec"]["containers"][0]["image"] = json!(5);
    dep["spec"]["paused"] = json!("yes");
    let messages: Vec<String> = type_mismatches(DEPLOYMENT, &dep)
        .into_iter()
        .map(|t| t.message)
        .collect();
    assert!(messages.contains(&"json: cannot unmarshal string into Go struct field DeploymentSpec.spec.replicas of type int32".to_string()), "{messages:?}");
    assert!(messages.contains(&"json: cannot unmarshal number into Go struct field Container.spec.template.spec.containers.image of type string".to_string()), "{messages:?}");
    assert!(messages.contains(&"json: cannot unmarshal string into Go struct field DeploymentSpec.spec.paused of type bool".to_string()), "{messages:?}");
}

#[test]
fn structural_and_numeric_mismatches() {
    let mut dep = deployment();
    dep["spec"]["template"]["spec"]["containers"] = json!({"name": "app"});
    dep["spec"]["replicas"] = json!(1.5);
    let found = type_mismatches(DEPLOYMENT, &dep);
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(found
        .iter()
        .any(|t| t.path == "spec.template.spec.containers"
            && t.message.ends_with("of type []v1.Container")));
    assert!(found.iter().any(|t| t.message
        == "json: cannot unmarshal number 1.5 into Go struct field DeploymentSpec.spec.replicas of type int32"));
    let mut big = deployment();
    big["spec"]["replicas"] = json!(5_000_000_000_i64);
    assert_eq!(type_mismatches(DEPLOYMENT, &big).len(), 1);
}

#[test]
fn int_or_string_and_quantities_accept_both_forms() {
    let mut dep = deployment();
    dep["spec"]["strategy"]["rollingUpdate"]["maxSurge"] = json!(true);
    let found = type_mismatches(DEPLOYMENT, &dep);
    assert_eq!(found.len(), 1);
    assert!(
        found[0].message.ends_with("of type intstr.IntOrString"),
        "{found:?}"
    );
    dep["spec"]["strategy"]["rollingUpdate"]["maxSurge"] = json!(2);
    dep["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["cpu"] = json!(0.5);
    assert!(type_mismatches(DEPLOYMENT, &dep).is_empty());
}

#[test]
fn secret_data_must_be_base64() {
    let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
        "data": {"good": "aGVs\nbG8=", "bad": "not base64!"}});
    let found = type_mismatches("io.k8s.api.core.v1.Secret", &secret);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].path, "data.bad");
    assert_eq!(found[0].message, "illegal base64 data at input byte 3");
}

#[test]
fn nulls_are_always_accepted() {
    let mut dep = deployment();
    dep["spec"]["replicas"] = Value::Null;
    dep["spec"]["template"]["spec"]["containers"][0]["ports"] = Value::Null;
    assert!(type_mismatches(DEPLOYMENT, &dep).is_empty());
}

#[test]
fn directive_parsing_defaults_to_warn() {
    assert_eq!(FieldValidation::from_query(None), Ok(FieldValidation::Warn));
    assert_eq!(
        FieldValidation::from_query(Some("")),
        Ok(FieldValidation::Warn)
    );
    assert_eq!(
        FieldValidation::from_query(Some("Strict")),
        Ok(FieldValidation::Strict)
    );
    assert_eq!(
        FieldValidation::from_query(Some("Ignore")),
        Ok(FieldValidation::Ignore)
    );
    let err = FieldValidation::from_query(Some("strict")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "fieldValidation: Unsupported value: \"strict\": supported values: \"\", \"Ignore\", \"Strict\", \"Warn\""
    );
}

#[test]
fn messages_wrap_like_upstream() {
    let issues = [StrictIssue::UnknownField("spec.colour".into())];
    assert_eq!(
        cannot_handle_message("Widget", "v1", &strict_decoding_error(&issues)),
        "Widget in version \"v1\" cannot be handled as a Widget: strict decoding error: unknown field \"spec.colour\""
    );
    assert_eq!(warnings(&issues), ["unknown field \"spec.colour\""]);
}

#[test]
fn unknown_definitions_are_not_flagged() {
    let obj = json!({"spec": {"anything": 1}});
    assert!(unknown_fields("com.example.v1.Widget", &obj).is_empty());
}
