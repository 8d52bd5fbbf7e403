//! End-to-end tests: objects encoded with the k8s-pb prost types, wrapped in the envelope,
//! must decode to the JSON a client would have sent.

use std::collections::BTreeMap;

use k8s_pb::api::apps::v1 as apps;
use k8s_pb::api::coordination::v1 as coordination;
use k8s_pb::api::core::v1 as core;
use k8s_pb::apimachinery::pkg::api::resource::Quantity;
use k8s_pb::apimachinery::pkg::apis::meta::v1 as meta;
use k8s_pb::apimachinery::pkg::runtime::{RawExtension, TypeMeta, Unknown};
use k8s_pb::apimachinery::pkg::util::intstr::IntOrString;
use prost::Message;
use serde_json::json;

use super::*;

fn envelope(api_version: &str, kind: &str, object: &impl Message) -> Vec<u8> {
    let unknown = Unknown {
        type_meta: Some(TypeMeta {
            api_version: Some(api_version.to_string()),
            kind: Some(kind.to_string()),
        }),
        raw: Some(object.encode_to_vec()),
        content_encoding: Some(String::new()),
        content_type: Some(String::new()),
    };
    let mut body = MAGIC.to_vec();
    body.extend(unknown.encode_to_vec());
    body
}

fn s(v: &str) -> Option<String> {
    Some(v.to_string())
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn time(seconds: i64) -> Option<meta::Time> {
    Some(meta::Time {
        seconds: Some(seconds),
        nanos: Some(0),
    })
}

fn deployment() -> apps::Deployment {
    let container = |name: &str, image: &str| core::Container {
        name: s(name),
        image: s(image),
        ..Default::default()
    };
    apps::Deployment {
        metadata: Some(meta::ObjectMeta {
            name: s("web"),
            namespace: s("default"),
            labels: labels(&[("app", "web")]),
            ..Default::default()
        }),
        spec: Some(apps::DeploymentSpec {
            replicas: Some(3),
            selector: Some(meta::LabelSelector {
                match_labels: labels(&[("app", "web")]),
                ..Default::default()
            }),
            template: Some(core::PodTemplateSpec {
                metadata: Some(meta::ObjectMeta {
                    labels: labels(&[("app", "web")]),
                    ..Default::default()
                }),
                spec: Some(core::PodSpec {
                    containers: vec![
                        core::Container {
                            ports: vec![core::ContainerPort {
                                name: s("http"),
                                container_port: Some(80),
                                protocol: s("TCP"),
                                ..Default::default()
                            }],
                            env: vec![core::EnvVar {
                                name: s("MODE"),
                                value: s("prod"),
                                ..Default::default()
                            }],
                            resources: Some(core::ResourceRequirements {
                                limits: [
                                    ("cpu".to_string(), Quantity { string: s("500m") }),
                                    ("memory".to_string(), Quantity { string: s("128Mi") }),
                                ]
                                .into(),
                                ..Default::default()
                            }),
                            ..container("web", "nginx:1.25")
                        },
                        core::Container {
                            command: vec!["sh".into(), "-c".into(), "sleep 3600".into()],
                            env: vec![core::EnvVar {
                                name: s("POD_IP"),
                                value_from: Some(core::EnvVarSource {
                                    field_ref: Some(core::ObjectFieldSelector {
                                        field_path: s("status.podIP"),
                                        ..Default::default()
                                    }),
                                    ..Default::default()
                                }),
                                ..Default::default()
                            }],
                            ..container("sidecar", "busybox")
                        },
                    ],
                    termination_grace_period_seconds: Some(0),
                    automount_service_account_token: Some(false),
                    ..Default::default()
                }),
            }),
            strategy: Some(apps::DeploymentStrategy {
                r#type: s("RollingUpdate"),
                rolling_update: Some(apps::RollingUpdateDeployment {
                    max_surge: Some(IntOrString {
                        r#type: Some(1),
                        int_val: Some(0),
                        str_val: s("25%"),
                    }),
                    max_unavailable: Some(IntOrString {
                        r#type: Some(0),
                        int_val: Some(1),
                        str_val: s(""),
                    }),
                }),
            }),
            ..Default::default()
        }),
        status: Some(apps::DeploymentStatus {
            conditions: vec![apps::DeploymentCondition {
                r#type: s("Available"),
                status: s("True"),
                last_update_time: time(1_704_164_645),
                ..Default::default()
            }],
            ..Default::default()
        }),
    }
}

#[test]
fn deployment_decodes_to_its_json_form() {
    let body = envelope("apps/v1", "Deployment", &deployment());
    let value = decode(&body).unwrap();
    let expected = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [
                        {
                            "name": "web",
                            "image": "nginx:1.25",
                            "ports": [{"name": "http", "containerPort": 80, "protocol": "TCP"}],
                            "env": [{"name": "MODE", "value": "prod"}],
                            "resources": {"limits": {"cpu": "500m", "memory": "128Mi"}}
                        },
                        {
                            "name": "sidecar",
                            "image": "busybox",
                            "command": ["sh", "-c", "sleep 3600"],
                            "env": [{"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}]
                        }
                    ],
                    "terminationGracePeriodSeconds": 0,
                    "automountServiceAccountToken": false
                }
            },
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 1}
            }
        },
        "status": {
            "conditions": [{
                "type": "Available",
                "status": "True",
                "lastUpdateTime": "2024-01-02T03:04:05Z"
            }]
        }
    });
    assert_eq!(value, expected);
    let typed: k8s_openapi::api::apps::v1::Deployment = serde_json::from_value(value).unwrap();
    assert_eq!(typed.spec.unwrap().replicas, Some(3));
}

#[test]
fn present_zero_values_are_kept() {
    let mut d = deployment();
    d.spec.as_mut().unwrap().replicas = Some(0);
    d.spec.as_mut().unwrap().paused = Some(false);
    let value = decode(&envelope("apps/v1", "Deployment", &d)).unwrap();
    assert_eq!(value["spec"]["replicas"], json!(0));
    assert_eq!(value["spec"]["paused"], json!(false));
    assert!(value["spec"].get("minReadySeconds").is_none());
}

#[test]
fn kubectl_create_namespace_body() {
    // What a Go client writes: value-typed fields are always on the wire, the zero
    // creationTimestamp as an empty message.
    let ns = core::Namespace {
        metadata: Some(meta::ObjectMeta {
            name: s("demo"),
            generate_name: s(""),
            namespace: s(""),
            self_link: s(""),
            uid: s(""),
            resource_version: s(""),
            generation: Some(0),
            creation_timestamp: Some(meta::Time::default()),
            ..Default::default()
        }),
        spec: Some(core::NamespaceSpec::default()),
        status: Some(core::NamespaceStatus {
            phase: s(""),
            ..Default::default()
        }),
    };
    let value = decode(&envelope("v1", "Namespace", &ns)).unwrap();
    assert_eq!(value["apiVersion"], "v1");
    assert_eq!(value["kind"], "Namespace");
    assert_eq!(
        value,
        json!({
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": "demo", "creationTimestamp": null, "generation": 0},
            "spec": {},
            "status": {}
        })
    );
    let typed: k8s_openapi::api::core::v1::Namespace = serde_json::from_value(value).unwrap();
    assert_eq!(typed.metadata.name.as_deref(), Some("demo"));
}

#[test]
fn secret_bytes_become_base64() {
    let secret = core::Secret {
        metadata: Some(meta::ObjectMeta {
            name: s("creds"),
            ..Default::default()
        }),
        data: [("key".to_string(), vec![0u8, 1, 2, 255])].into(),
        string_data: labels(&[("plain", "text")]),
        r#type: s("Opaque"),
        immutable: Some(true),
    };
    let value = decode(&envelope("v1", "Secret", &secret)).unwrap();
    assert_eq!(
        value,
        json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "creds"},
            "data": {"key": "AAEC/w=="},
            "stringData": {"plain": "text"},
            "type": "Opaque",
            "immutable": true
        })
    );
    let typed: k8s_openapi::api::core::v1::Secret = serde_json::from_value(value).unwrap();
    assert_eq!(typed.data.unwrap()["key"].0, vec![0u8, 1, 2, 255]);
}

#[test]
fn config_map_with_binary_data() {
    let cm = core::ConfigMap {
        metadata: Some(meta::ObjectMeta {
            name: s("cfg"),
            ..Default::default()
        }),
        data: labels(&[("a", "1"), ("b", "")]),
        binary_data: [("bin".to_string(), b"hi".to_vec())].into(),
        ..Default::default()
    };
    let value = decode(&envelope("v1", "ConfigMap", &cm)).unwrap();
    assert_eq!(value["data"], json!({"a": "1", "b": ""}));
    assert_eq!(value["binaryData"], json!({"bin": "aGk="}));
}

#[test]
fn service_acronym_fields_and_int_target_port() {
    let svc = core::Service {
        metadata: Some(meta::ObjectMeta {
            name: s("web"),
            ..Default::default()
        }),
        spec: Some(core::ServiceSpec {
            cluster_ip: s("10.0.0.10"),
            cluster_ips: vec!["10.0.0.10".into()],
            ip_families: vec!["IPv4".into()],
            ports: vec![core::ServicePort {
                port: Some(80),
                target_port: Some(IntOrString {
                    r#type: Some(0),
                    int_val: Some(8080),
                    str_val: None,
                }),
                ..Default::default()
            }],
            ..Default::default()
        }),
        status: None,
    };
    let value = decode(&envelope("v1", "Service", &svc)).unwrap();
    assert_eq!(
        value["spec"],
        json!({
            "clusterIP": "10.0.0.10",
            "clusterIPs": ["10.0.0.10"],
            "ipFamilies": ["IPv4"],
            "ports": [{"port": 80, "targetPort": 8080}]
        })
    );
}

#[test]
fn lease_micro_time_keeps_microseconds() {
    let lease = coordination::Lease {
        metadata: Some(meta::ObjectMeta {
            name: s("leader"),
            ..Default::default()
        }),
        spec: Some(coordination::LeaseSpec {
            holder_identity: s("node-1"),
            lease_duration_seconds: Some(15),
            renew_time: Some(meta::MicroTime {
                seconds: Some(1_704_164_645),
                nanos: Some(123_456_789),
            }),
            ..Default::default()
        }),
    };
    let value = decode(&envelope("coordination.k8s.io/v1", "Lease", &lease)).unwrap();
    assert_eq!(value["spec"]["renewTime"], "2024-01-02T03:04:05.123456Z");
    assert_eq!(value["spec"]["leaseDurationSeconds"], 15);
}

#[test]
fn raw_extension_and_fields_v1_embed_json() {
    let revision = apps::ControllerRevision {
        metadata: Some(meta::ObjectMeta {
            name: s("rev"),
            managed_fields: vec![meta::ManagedFieldsEntry {
                manager: s("kubectl"),
                operation: s("Update"),
                fields_type: s("FieldsV1"),
                fields_v1: Some(meta::FieldsV1 {
                    raw: Some(br#"{"f:metadata":{}}"#.to_vec()),
                }),
                time: time(1_704_164_645),
                ..Default::default()
            }],
            ..Default::default()
        }),
        data: Some(RawExtension {
            raw: Some(br#"{"spec":{"replicas":2}}"#.to_vec()),
        }),
        revision: Some(4),
    };
    let value = decode(&envelope("apps/v1", "ControllerRevision", &revision)).unwrap();
    assert_eq!(value["data"], json!({"spec": {"replicas": 2}}));
    assert_eq!(value["revision"], 4);
    assert_eq!(
        value["metadata"]["managedFields"][0],
        json!({
            "manager": "kubectl",
            "operation": "Update",
            "fieldsType": "FieldsV1",
            "fieldsV1": {"f:metadata": {}},
            "time": "2024-01-02T03:04:05Z"
        })
    );
}

#[test]
fn raw_extension_may_hold_a_protobuf_envelope() {
    let inner = envelope(
        "v1",
        "ConfigMap",
        &core::ConfigMap {
            metadata: Some(meta::ObjectMeta {
                name: s("inner"),
                ..Default::default()
            }),
            ..Default::default()
        },
    );
    let revision = apps::ControllerRevision {
        data: Some(RawExtension { raw: Some(inner) }),
        ..Default::default()
    };
    let value = decode(&envelope("apps/v1", "ControllerRevision", &revision)).unwrap();
    assert_eq!(
        value["data"],
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "inner"}})
    );
}

#[test]
fn delete_options_sent_to_any_group() {
    let opts = meta::DeleteOptions {
        grace_period_seconds: Some(0),
        propagation_policy: s("Foreground"),
        dry_run: vec!["All".into()],
        ..Default::default()
    };
    let value = decode(&envelope("apps/v1", "DeleteOptions", &opts)).unwrap();
    assert_eq!(
        value,
        json!({
            "apiVersion": "apps/v1",
            "kind": "DeleteOptions",
            "gracePeriodSeconds": 0,
            "propagationPolicy": "Foreground",
            "dryRun": ["All"]
        })
    );
}

#[test]
fn unknown_fields_are_skipped() {
    let mut raw = core::ConfigMap {
        data: labels(&[("a", "1")]),
        ..Default::default()
    }
    .encode_to_vec();
    // field 99 as a varint, then as a length-delimited record
    raw.extend([0x98, 0x06, 0x07, 0x9a, 0x06, 0x02, b'h', b'i']);
    let unknown = Unknown {
        type_meta: Some(TypeMeta {
            api_version: s("v1"),
            kind: s("ConfigMap"),
        }),
        raw: Some(raw),
        ..Default::default()
    };
    let mut body = MAGIC.to_vec();
    body.extend(unknown.encode_to_vec());
    assert_eq!(decode(&body).unwrap()["data"], json!({"a": "1"}));
}

#[test]
fn envelope_errors_are_specific() {
    assert_eq!(decode(b"{}"), Err(ProtobufError::MissingMagic));
    let no_type = [MAGIC, &Unknown::default().encode_to_vec()[..]].concat();
    assert_eq!(decode(&no_type), Err(ProtobufError::MissingTypeMeta));
    let unknown = envelope("example.com/v1", "Widget", &core::ConfigMap::default());
    assert!(matches!(
        decode(&unknown),
        Err(ProtobufError::UnknownType { .. })
    ));
    let mut gzip =
        Unknown::decode(&envelope("v1", "ConfigMap", &core::ConfigMap::default())[4..]).unwrap();
    gzip.content_encoding = s("gzip");
    let gzip = [MAGIC, &gzip.encode_to_vec()[..]].concat();
    assert_eq!(
        decode(&gzip),
        Err(ProtobufError::UnsupportedContentEncoding("gzip".into()))
    );
}

#[test]
fn wrong_wire_type_names_the_field() {
    let raw = vec![0x12, 0x02, 0x08, 0x01]; // spec as a message whose field 1 (replicas) is fine
    let mut bad = raw.clone();
    bad.extend([0x12, 0x02, 0x0a, 0x00]); // spec.replicas sent length-delimited
    let unknown = Unknown {
        type_meta: Some(TypeMeta {
            api_version: s("apps/v1"),
            kind: s("Deployment"),
        }),
        raw: Some(bad),
        ..Default::default()
    };
    let body = [MAGIC, &unknown.encode_to_vec()[..]].concat();
    let err = decode(&body).unwrap_err();
    assert!(err.to_string().contains("spec.replicas"), "{err}");
}

#[test]
fn json_content_type_inside_the_envelope() {
    let unknown = Unknown {
        type_meta: Some(TypeMeta {
            api_version: s("v1"),
            kind: s("ConfigMap"),
        }),
        raw: Some(br#"{"data":{"a":"1"}}"#.to_vec()),
        content_type: s("application/json"),
        ..Default::default()
    };
    let body = [MAGIC, &unknown.encode_to_vec()[..]].concat();
    assert_eq!(
        decode(&body).unwrap(),
        json!({"apiVersion": "v1", "kind": "ConfigMap", "data": {"a": "1"}})
    );
}

#[test]
fn truncated_and_corrupted_bodies_never_panic() {
    let body = envelope("apps/v1", "Deployment", &deployment());
    for len in 0..body.len() {
        let _ = decode(&body[..len]);
    }
    let raw = deployment().encode_to_vec();
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..2000 {
        let mut corrupt = raw.clone();
        for _ in 0..3 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let i = (seed % corrupt.len() as u64) as usize;
            corrupt[i] = (seed >> 32) as u8;
        }
        let unknown = Unknown {
            type_meta: Some(TypeMeta {
                api_version: s("apps/v1"),
                kind: s("Deployment"),
            }),
            raw: Some(corrupt),
            ..Default::default()
        };
        let _ = decode(&[MAGIC, &unknown.encode_to_vec()[..]].concat());
    }
}

#[test]
fn deep_nesting_is_rejected() {
    // RawExtension -> envelope -> ControllerRevision -> RawExtension ... beyond the limit
    let mut body = envelope("v1", "ConfigMap", &core::ConfigMap::default());
    for _ in 0..(to_json::MAX_DEPTH + 5) {
        body = envelope(
            "apps/v1",
            "ControllerRevision",
            &apps::ControllerRevision {
                data: Some(RawExtension { raw: Some(body) }),
                ..Default::default()
            },
        );
    }
    let err = decode(&body).unwrap_err();
    assert!(err.to_string().contains("nest deeper"), "{err}");
}

#[test]
fn protobuf_content_types() {
    assert!(is_protobuf_content_type(
        "application/vnd.kubernetes.protobuf"
    ));
    assert!(is_protobuf_content_type(
        "Application/Vnd.Kubernetes.Protobuf; charset=utf-8"
    ));
    assert!(!is_protobuf_content_type("application/json"));
    assert!(!is_protobuf_content_type(
        "application/vnd.kubernetes.protobuf+json"
    ));
}

#[test]
fn encode_produces_what_go_would_decode() {
    let json = decode(&envelope("apps/v1", "Deployment", &deployment())).unwrap();
    let body = encode(&json).unwrap();
    let unknown = Unknown::decode(body.strip_prefix(MAGIC).unwrap()).unwrap();
    let type_meta = unknown.type_meta.unwrap();
    assert_eq!(type_meta.api_version.as_deref(), Some("apps/v1"));
    assert_eq!(type_meta.kind.as_deref(), Some("Deployment"));
    let decoded = apps::Deployment::decode(unknown.raw.unwrap().as_slice()).unwrap();
    assert_eq!(decoded, deployment());
}

#[test]
fn encode_then_decode_round_trips() {
    let objects = [
        json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "s", "creationTimestamp": "2024-01-02T03:04:05Z"},
            "data": {"k": "AAEC/w=="}, "type": "Opaque"
        }),
        json!({
            "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": "l"},
            "spec": {"renewTime": "2024-01-02T03:04:05.123456Z", "leaseDurationSeconds": 0}
        }),
        json!({
            "apiVersion": "apps/v1", "kind": "ControllerRevision",
            "metadata": {"name": "r", "managedFields": [{"fieldsV1": {"f:data": {}}}]},
            "data": {"any": ["json", 1, true]}, "revision": 2
        }),
        json!({
            "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "widgets.example.com"},
            "spec": {
                "group": "example.com",
                "names": {"plural": "widgets", "kind": "Widget"},
                "scope": "Namespaced",
                "versions": [{
                    "name": "v1", "served": true, "storage": true,
                    "schema": {"openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "x-kubernetes-preserve-unknown-fields": true,
                                "additionalProperties": {"type": "string"},
                                "properties": {
                                    "size": {"type": "integer", "maximum": 10, "minimum": 0.5,
                                             "default": 3, "x-kubernetes-int-or-string": true},
                                    "tags": {"type": "array", "items": {"type": "string"}},
                                    "open": {"type": "object", "additionalProperties": false}
                                }
                            }
                        }
                    }}
                }]
            }
        }),
    ];
    for object in objects {
        let body = encode(&object).unwrap();
        assert_eq!(decode(&body).unwrap(), object);
    }
}

#[test]
fn encode_errors_name_the_field() {
    let err = encode(&json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "spec": {"template": {"spec": {"containers": [{"name": "a", "ports": [{"containerPort": "80"}]}]}}}
    }))
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("spec.template.spec.containers[0].ports[0].containerPort"),
        "{err}"
    );
    assert_eq!(
        encode(&json!({"kind": "Pod"})),
        Err(ProtobufError::MissingTypeMeta)
    );
    let err =
        encode(&json!({"apiVersion": "v1", "kind": "Pod", "spec": {"activeDeadlineSeconds": 1.5}}))
            .unwrap_err();
    assert!(err.to_string().contains("activeDeadlineSeconds"), "{err}");
}

#[test]
fn inlined_go_structs_are_flattened_both_ways() {
    let pod = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "p"},
        "spec": {
            "containers": [{
                "name": "c",
                "image": "nginx",
                "readinessProbe": {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 5},
                "env": [{"name": "K", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "k"}}}]
            }],
            "volumes": [{"name": "data", "emptyDir": {"sizeLimit": "1Gi"}}]
        }
    });
    let body = encode(&pod).unwrap();
    let unknown = Unknown::decode(body.strip_prefix(MAGIC).unwrap()).unwrap();
    let typed = core::Pod::decode(unknown.raw.unwrap().as_slice()).unwrap();
    let spec = typed.spec.as_ref().unwrap();
    let probe = spec.containers[0].readiness_probe.as_ref().unwrap();
    let http_get = probe.handler.as_ref().unwrap().http_get.as_ref().unwrap();
    assert_eq!(http_get.path.as_deref(), Some("/healthz"));
    assert_eq!(probe.period_seconds, Some(5));
    let volume_source = spec.volumes[0].volume_source.as_ref().unwrap();
    assert!(volume_source.empty_dir.is_some());
    assert_eq!(decode(&body).unwrap(), pod);
}
