//! Patches as kubectl sends them, applied to built-in objects.

use super::*;
use serde_json::json;

const DEPLOYMENT: &str = "io.k8s.api.apps.v1.Deployment";

fn deployment() -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "web",
            "namespace": "default",
            "labels": {"app": "web", "tier": "front"},
            "finalizers": ["a.example.com/x", "b.example.com/y"]
        },
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}
            },
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [
                        {
                            "name": "app",
                            "image": "nginx:1.25",
                            "ports": [{"containerPort": 80, "protocol": "TCP"}]
                        },
                        {
                            "name": "sidecar",
                            "image": "busybox",
                            "env": [{"name": "MODE", "value": "tail"}]
                        }
                    ],
                    "tolerations": [{"key": "a", "operator": "Exists"}],
                    "securityContext": {"runAsNonRoot": true}
                }
            }
        }
    })
}

fn smp(original: &Value, patch: Value) -> Result<Value, PatchError> {
    apply(
        PatchType::StrategicMerge,
        DEPLOYMENT,
        original,
        patch.to_string().as_bytes(),
    )
}

fn containers(obj: &Value) -> &Vec<Value> {
    obj["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap()
}

fn names(list: &[Value]) -> Vec<&str> {
    list.iter().map(|c| c["name"].as_str().unwrap()).collect()
}

#[test]
fn content_types_map_to_patch_types() {
    assert_eq!(
        PatchType::from_content_type("application/strategic-merge-patch+json"),
        Some(PatchType::StrategicMerge)
    );
    assert_eq!(
        PatchType::from_content_type("application/merge-patch+json; charset=utf-8"),
        Some(PatchType::Merge)
    );
    assert_eq!(
        PatchType::from_content_type("application/json-patch+json"),
        Some(PatchType::Json)
    );
    assert_eq!(
        PatchType::from_content_type("application/apply-patch+yaml"),
        None
    );
    assert_eq!(PatchType::from_content_type("application/json"), None);
}

#[test]
fn apply_changing_replicas_and_adding_env_keeps_both_containers() {
    let patch = json!({
        "spec": {
            "replicas": 3,
            "template": {"spec": {
                "$setElementOrder/containers": [{"name": "app"}, {"name": "sidecar"}],
                "containers": [{"name": "app", "env": [{"name": "LOG", "value": "debug"}]}]
            }}
        }
    });
    let out = smp(&deployment(), patch).unwrap();
    assert_eq!(out["spec"]["replicas"], 3);
    let cs = containers(&out);
    assert_eq!(names(cs), ["app", "sidecar"]);
    assert_eq!(cs[0]["image"], "nginx:1.25");
    assert_eq!(cs[0]["env"], json!([{"name": "LOG", "value": "debug"}]));
    assert_eq!(cs[0]["ports"][0]["containerPort"], 80);
    assert_eq!(cs[1]["env"], json!([{"name": "MODE", "value": "tail"}]));
    assert!(
        out.to_string().find('$').is_none(),
        "no directive leaks: {out}"
    );
}

#[test]
fn env_entries_merge_by_name_and_follow_set_element_order() {
    let patch = json!({"spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "app"}, {"name": "sidecar"}],
        "containers": [{
            "name": "sidecar",
            "$setElementOrder/env": [{"name": "FIRST"}, {"name": "MODE"}],
            "env": [{"name": "FIRST", "value": "1"}, {"name": "MODE", "value": "follow"}]
        }]
    }}}});
    let out = smp(&deployment(), patch).unwrap();
    assert_eq!(
        containers(&out)[1]["env"],
        json!([{"name": "FIRST", "value": "1"}, {"name": "MODE", "value": "follow"}])
    );
}

#[test]
fn delete_directive_removes_a_container() {
    let patch = json!({"spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "app"}],
        "containers": [{"$patch": "delete", "name": "sidecar"}]
    }}}});
    let out = smp(&deployment(), patch).unwrap();
    assert_eq!(names(containers(&out)), ["app"]);
}

#[test]
fn retain_keys_switches_strategy_to_recreate() {
    let patch = json!({"spec": {"strategy": {
        "$retainKeys": ["type"],
        "rollingUpdate": null,
        "type": "Recreate"
    }}});
    let out = smp(&deployment(), patch).unwrap();
    assert_eq!(out["spec"]["strategy"], json!({"type": "Recreate"}));
}

#[test]
fn retain_keys_clears_fields_even_without_nulls() {
    let patch = json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}});
    let out = smp(&deployment(), patch).unwrap();
    assert_eq!(out["spec"]["strategy"], json!({"type": "Recreate"}));
}

#[test]
fn retain_keys_rejects_patch_keys_it_does_not_list() {
    let patch = json!({"spec": {"strategy": {
        "$retainKeys": ["type"],
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 1}
    }}});
    let err = smp(&deployment(), patch).unwrap_err();
    assert_eq!(err, PatchError::BadRetainKeysFormat);
    assert_eq!(err.code(), 400);
}

#[test]
fn new_container_goes_where_set_element_order_puts_it() {
    let patch = json!({"spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "app"}, {"name": "proxy"}, {"name": "sidecar"}],
        "containers": [{"name": "proxy", "image": "envoy"}]
    }}}});
    let out = smp(&deployment(), patch).unwrap();
    assert_eq!(names(containers(&out)), ["app", "proxy", "sidecar"]);
}

#[test]
fn without_order_new_items_come_before_server_only_items() {
    // Upstream's ordering puts items unknown to the live list ahead of server-only items.
    let patch = json!({"spec": {"template": {"spec": {
        "containers": [{"name": "proxy", "image": "envoy"}]
    }}}});
    let out = smp(&deployment(), patch).unwrap();
    assert_eq!(names(containers(&out)), ["proxy", "app", "sidecar"]);
}

#[test]
fn set_element_order_reorders_existing_items() {
    let patch = json!({"spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "sidecar"}, {"name": "app"}]
    }}}});
    let out = smp(&deployment(), patch).unwrap();
    assert_eq!(names(containers(&out)), ["sidecar", "app"]);
}

#[test]
fn ports_merge_by_container_port() {
    let patch = json!({"spec": {"template": {"spec": {"containers": [{
        "name": "app",
        "ports": [{"containerPort": 80, "name": "http"}, {"containerPort": 443}]
    }]}}}});
    let out = smp(&deployment(), patch).unwrap();
    assert_eq!(
        containers(&out)[0]["ports"],
        json!([
            {"containerPort": 80, "protocol": "TCP", "name": "http"},
            {"containerPort": 443}
        ])
    );
}

#[test]
fn replace_directive_in_a_list_replaces_it() {
    let patch = json!({"spec": {"template": {"spec": {"containers": [
        {"name": "only", "image": "alpine"},
        {"$patch": "replace"}
    ]}}}});
    let out = smp(&deployment(), patch).unwrap();
    assert_eq!(
        containers(&out),
        &vec![json!({"name": "only", "image": "alpine"})]
    );
}

#[test]
fn replace_and_delete_directives_on_maps() {
    let patch = json!({
        "metadata": {"labels": {"$patch": "replace", "new": "yes"}},
        "spec": {"template": {"spec": {"securityContext": {"$patch": "delete"}}}}
    });
    let out = smp(&deployment(), patch).unwrap();
    assert_eq!(out["metadata"]["labels"], json!({"new": "yes"}));
    assert_eq!(
        out["spec"]["template"]["spec"]["securityContext"],
        json!({})
    );
}

#[test]
fn lists_without_strategy_are_replaced() {
    let patch = json!({"spec": {"template": {"spec": {
        "tolerations": [{"key": "b", "operator": "Exists"}]
    }}}});
    let out = smp(&deployment(), patch).unwrap();
    assert_eq!(
        out["spec"]["template"]["spec"]["tolerations"],
        json!([{"key": "b", "operator": "Exists"}])
    );
}

#[test]
fn finalizers_merge_as_a_set_and_delete_from_primitive_list() {
    let patch = json!({"metadata": {
        "finalizers": ["c.example.com/z", "a.example.com/x"],
        "$deleteFromPrimitiveList/finalizers": ["b.example.com/y"]
    }});
    let out = smp(&deployment(), patch).unwrap();
    let finalizers = out["metadata"]["finalizers"].as_array().unwrap();
    assert_eq!(finalizers.len(), 2);
    assert!(finalizers.contains(&json!("a.example.com/x")));
    assert!(finalizers.contains(&json!("c.example.com/z")));
}

#[test]
fn labels_merge_and_null_deletes() {
    let patch = json!({"metadata": {"labels": {"tier": null, "env": "prod"}}});
    let out = smp(&deployment(), patch).unwrap();
    assert_eq!(
        out["metadata"]["labels"],
        json!({"app": "web", "env": "prod"})
    );
}

#[test]
fn config_map_data_merges_like_a_merge_patch() {
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"},
        "data": {"a": "1", "b": "2"}});
    let patch = json!({"data": {"a": null, "c": "3"}});
    let out = apply(
        PatchType::StrategicMerge,
        "io.k8s.api.core.v1.ConfigMap",
        &cm,
        patch.to_string().as_bytes(),
    )
    .unwrap();
    assert_eq!(out["data"], json!({"b": "2", "c": "3"}));
}

#[test]
fn unknown_fields_and_unknown_definitions_merge_like_merge_patch() {
    let patch = json!({"spec": {"custom": {"x": 1, "gone": null}}});
    let out = smp(&deployment(), patch.clone()).unwrap();
    assert_eq!(out["spec"]["custom"], json!({"x": 1}));

    let cr = json!({"spec": {"items": [1, 2], "nested": {"a": 1}}});
    let out = apply(
        PatchType::StrategicMerge,
        "com.example.v1.Widget",
        &cr,
        br#"{"spec": {"items": [3], "nested": {"b": 2}}}"#,
    )
    .unwrap();
    assert_eq!(
        out,
        json!({"spec": {"items": [3], "nested": {"a": 1, "b": 2}}})
    );
}

#[test]
fn service_ports_merge_by_port() {
    let svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
        "spec": {"ports": [{"port": 80, "targetPort": 8080}, {"port": 443}]}});
    let patch = json!({"spec": {"ports": [{"port": 80, "targetPort": 9090}]}});
    let out = apply(
        PatchType::StrategicMerge,
        "io.k8s.api.core.v1.Service",
        &svc,
        patch.to_string().as_bytes(),
    )
    .unwrap();
    assert_eq!(
        out["spec"]["ports"],
        json!([{"port": 80, "targetPort": 9090}, {"port": 443}])
    );
}

#[test]
fn pod_conditions_merge_by_type() {
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
    "status": {"conditions": [
        {"type": "Ready", "status": "False"},
        {"type": "PodScheduled", "status": "True"}
    ]}});
    let patch = json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]}});
    let out = apply(
        PatchType::StrategicMerge,
        "io.k8s.api.core.v1.Pod",
        &pod,
        patch.to_string().as_bytes(),
    )
    .unwrap();
    assert_eq!(
        out["status"]["conditions"],
        json!([
            {"type": "Ready", "status": "True"},
            {"type": "PodScheduled", "status": "True"}
        ])
    );
}

#[test]
fn missing_merge_key_is_an_unclassified_error() {
    let patch = json!({"spec": {"template": {"spec": {"containers": [{"image": "x"}]}}}});
    let err = smp(&deployment(), patch).unwrap_err();
    assert_eq!(
        err.to_string(),
        "map: map[image:x] does not contain declared merge key: name"
    );
    assert_eq!(err.code(), 500);
}

#[test]
fn malformed_directives_are_rejected() {
    let bad_order = json!({"spec": {"template": {"spec": {"$setElementOrderx": []}}}});
    assert_eq!(
        smp(&deployment(), bad_order).unwrap_err(),
        PatchError::BadSetElementOrderFormat
    );
    let bad_delete = json!({"metadata": {"$deleteFromPrimitiveList/finalizers": "x"}});
    assert_eq!(
        smp(&deployment(), bad_delete).unwrap_err(),
        PatchError::BadPrimitiveListFormat
    );
    let bad_type = json!({"metadata": {"labels": {"$patch": "explode"}}});
    let err = smp(&deployment(), bad_type).unwrap_err();
    assert!(
        err.to_string().starts_with("unknown patch type: explode"),
        "{err}"
    );
    let merge_in_list =
        json!({"spec": {"template": {"spec": {"containers": [{"$patch": "merge"}]}}}});
    assert!(smp(&deployment(), merge_in_list).is_err());
}

#[test]
fn lists_of_lists_are_invalid() {
    let pod = json!({"metadata": {"finalizers": [["a"]]}});
    let err = apply(
        PatchType::StrategicMerge,
        "io.k8s.api.core.v1.Pod",
        &pod,
        br#"{"metadata": {"finalizers": [["b"]]}}"#,
    )
    .unwrap_err();
    assert_eq!(err, PatchError::ListOfLists);
    assert_eq!(err.code(), 422);
}

#[test]
fn set_element_order_must_match_patch_order() {
    let patch = json!({"spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "app"}],
        "containers": [{"name": "sidecar", "image": "x"}]
    }}}});
    let err = smp(&deployment(), patch).unwrap_err();
    assert!(
        err.to_string().starts_with("The order in patch list:"),
        "{err}"
    );
}

#[test]
fn strategic_patch_body_must_be_an_object() {
    let err = apply(PatchType::StrategicMerge, DEPLOYMENT, &deployment(), b"[1]").unwrap_err();
    assert!(err.is_bad_request());
    assert_eq!(
        err.to_string(),
        "json: cannot unmarshal array into Go value of type map[string]interface {}"
    );
    let err = apply(PatchType::StrategicMerge, DEPLOYMENT, &deployment(), b"{").unwrap_err();
    assert!(err.is_bad_request());
}

#[test]
fn json_patch_applies_operations() {
    let patch = br#"[
        {"op": "replace", "path": "/spec/replicas", "value": 5},
        {"op": "add", "path": "/metadata/labels/env", "value": "prod"},
        {"op": "remove", "path": "/spec/template/spec/containers/1"}
    ]"#;
    let out = apply(PatchType::Json, DEPLOYMENT, &deployment(), patch).unwrap();
    assert_eq!(out["spec"]["replicas"], 5);
    assert_eq!(out["metadata"]["labels"]["env"], "prod");
    assert_eq!(names(containers(&out)), ["app"]);
}

#[test]
fn json_patch_failures_are_invalid_and_bad_bodies_are_bad_requests() {
    let failing = br#"[{"op": "test", "path": "/spec/replicas", "value": 9}]"#;
    let err = apply(PatchType::Json, DEPLOYMENT, &deployment(), failing).unwrap_err();
    assert_eq!(err.code(), 422);
    assert_eq!(err.reason(), "Invalid");

    let missing = br#"[{"op": "remove", "path": "/spec/nothing"}]"#;
    assert_eq!(
        apply(PatchType::Json, DEPLOYMENT, &deployment(), missing)
            .unwrap_err()
            .code(),
        422
    );

    let unknown_op = br#"[{"op": "frobnicate", "path": "/spec"}]"#;
    assert_eq!(
        apply(PatchType::Json, DEPLOYMENT, &deployment(), unknown_op)
            .unwrap_err()
            .code(),
        422
    );

    for body in [&b"{\"op\": \"add\"}"[..], b"not json", b"[1]"] {
        let err = apply(PatchType::Json, DEPLOYMENT, &deployment(), body).unwrap_err();
        assert!(err.is_bad_request(), "{err}");
    }
}

#[test]
fn merge_patch_replaces_lists_and_deletes_nulls() {
    let patch = br#"{"spec": {"replicas": 2, "template": {"spec": {"containers": [{"name": "x", "image": "y"}]}}}, "metadata": {"labels": {"tier": null}}}"#;
    let out = apply(PatchType::Merge, DEPLOYMENT, &deployment(), patch).unwrap();
    assert_eq!(out["spec"]["replicas"], 2);
    assert_eq!(names(containers(&out)), ["x"]);
    assert_eq!(out["metadata"]["labels"], json!({"app": "web"}));
}

#[test]
fn merge_patch_must_be_an_object() {
    for body in [&b"[1]"[..], b"\"x\"", b"{"] {
        let err = apply(PatchType::Merge, DEPLOYMENT, &deployment(), body).unwrap_err();
        assert_eq!(err, PatchError::InvalidMergePatch);
        assert!(err.is_bad_request());
    }
}

#[test]
fn kubectl_removes_one_env_var_and_drops_another_field() {
    let patch = json!({"spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "app"}, {"name": "sidecar"}],
        "containers": [{
            "name": "sidecar",
            "$setElementOrder/env": [{"name": "NEW"}],
            "env": [{"name": "NEW", "value": "1"}, {"$patch": "delete", "name": "MODE"}],
            "image": null
        }]
    }}}});
    let out = smp(&deployment(), patch).unwrap();
    let sidecar = &containers(&out)[1];
    assert_eq!(sidecar["env"], json!([{"name": "NEW", "value": "1"}]));
    assert!(sidecar.get("image").is_none());
}
