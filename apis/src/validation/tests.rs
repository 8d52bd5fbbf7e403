//! Table-driven checks of whole objects against the causes upstream reports for them.

use super::{invalid_message, validate_create, validate_update, FieldError};
use serde_json::{json, Value};

const SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";

/// Returns `v` with the value at JSON pointer `ptr` replaced (`Value::Null` removes it).
fn with(mut v: Value, ptr: &str, value: Value) -> Value {
    let (parent, key) = ptr.rsplit_once('/').unwrap_or(("", ptr));
    let Some(target) = v.pointer_mut(parent) else {
        panic!("no parent for {ptr}");
    };
    match target {
        Value::Object(m) => {
            if value.is_null() {
                m.remove(key);
            } else {
                m.insert(key.to_string(), value);
            }
        }
        Value::Array(a) => {
            let i: usize = key.parse().unwrap_or(usize::MAX);
            if i < a.len() {
                a[i] = value;
            } else {
                a.push(value);
            }
        }
        _ => panic!("parent of {ptr} is not a container"),
    }
    v
}

fn causes(errs: &[FieldError]) -> Vec<(String, &'static str, String)> {
    errs.iter()
        .map(|e| (e.field.clone(), e.reason(), e.message()))
        .collect()
}

/// Compares only the field and reason of each cause.
fn expect_reasons(errs: &[FieldError], want: &[(&str, &str)]) {
    let got: Vec<(&str, &str)> = errs
        .iter()
        .map(|e| (e.field.as_str(), e.reason()))
        .collect();
    assert_eq!(got, want);
}

fn expect(errs: Vec<FieldError>, want: &[(&str, &str, &str)]) {
    let got = causes(&errs);
    let want: Vec<(String, &str, String)> = want
        .iter()
        .map(|(f, r, m)| (f.to_string(), *r, m.to_string()))
        .collect();
    assert_eq!(got, want);
}

fn container() -> Value {
    json!({"name": "nginx", "image": "nginx", "resources": {},
        "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File",
        "imagePullPolicy": "Always"})
}

fn pod_spec() -> Value {
    json!({"containers": [container()], "restartPolicy": "Always",
        "terminationGracePeriodSeconds": 30, "dnsPolicy": "ClusterFirst", "securityContext": {},
        "schedulerName": "default-scheduler", "enableServiceLinks": true,
        "preemptionPolicy": "PreemptLowerPriority", "priority": 0})
}

fn pod() -> Value {
    json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web", "namespace": "default", "resourceVersion": "1", "uid": "u1"},
        "spec": pod_spec()})
}

/// `kubectl create deployment web --image=nginx`, defaulted.
fn deployment() -> Value {
    let mut spec = pod_spec();
    if let Some(m) = spec.as_object_mut() {
        m.remove("enableServiceLinks");
        m.remove("preemptionPolicy");
        m.remove("priority");
    }
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"},
            "resourceVersion": "1", "uid": "u1", "generation": 1},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": spec},
            "strategy": {"type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}},
            "revisionHistoryLimit": 10, "progressDeadlineSeconds": 600}})
}

fn config_map() -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "cfg", "namespace": "default", "resourceVersion": "1"},
        "data": {"a.txt": "x", "KEY_NAME": "y"}})
}

fn service() -> Value {
    json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "web", "namespace": "default", "resourceVersion": "1"},
        "spec": {"ports": [{"port": 80, "protocol": "TCP", "targetPort": 80}],
            "selector": {"app": "web"}, "clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"],
            "type": "ClusterIP", "sessionAffinity": "None", "ipFamilies": ["IPv4"],
            "ipFamilyPolicy": "SingleStack", "internalTrafficPolicy": "Cluster"}})
}

fn job() -> Value {
    let spec = with(pod_spec(), "/restartPolicy", json!("Never"));
    let labels = json!({"batch.kubernetes.io/controller-uid": "u1", "batch.kubernetes.io/job-name": "pi",
        "controller-uid": "u1", "job-name": "pi"});
    json!({"apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": "pi", "namespace": "default", "resourceVersion": "1"},
        "spec": {"parallelism": 1, "completions": 1, "backoffLimit": 6, "completionMode": "NonIndexed",
            "suspend": false, "manualSelector": false,
            "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "u1"}},
            "template": {"metadata": {"labels": labels}, "spec": spec}}})
}

fn cron_job() -> Value {
    let spec = with(pod_spec(), "/restartPolicy", json!("OnFailure"));
    json!({"apiVersion": "batch/v1", "kind": "CronJob",
        "metadata": {"name": "tick", "namespace": "default", "resourceVersion": "1"},
        "spec": {"schedule": "*/1 * * * *", "concurrencyPolicy": "Allow", "suspend": false,
            "successfulJobsHistoryLimit": 3, "failedJobsHistoryLimit": 1,
            "jobTemplate": {"metadata": {}, "spec": {"template": {"metadata": {}, "spec": spec}}}}})
}

#[test]
fn valid_objects_pass() {
    let cases: Vec<(&str, &str, Value)> = vec![
        ("", "Pod", pod()),
        ("apps", "Deployment", deployment()),
        ("", "ConfigMap", config_map()),
        ("", "Service", service()),
        ("batch", "Job", job()),
        ("batch", "CronJob", cron_job()),
        (
            "",
            "Namespace",
            json!({"metadata": {"name": "team-a"}, "spec": {"finalizers": ["kubernetes"]}}),
        ),
        (
            "",
            "Secret",
            json!({"metadata": {"name": "tls", "namespace": "default"}, "type": "kubernetes.io/tls",
            "data": {"tls.crt": "YQ==", "tls.key": "Yg=="}}),
        ),
        (
            "",
            "ServiceAccount",
            json!({"metadata": {"name": "default", "namespace": "default"}}),
        ),
        (
            "",
            "Node",
            json!({"metadata": {"name": "node-1"}, "spec": {"podCIDRs": ["10.244.0.0/24"],
            "taints": [{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]}}),
        ),
        (
            "coordination.k8s.io",
            "Lease",
            json!({"metadata": {"name": "l", "namespace": "kube-system"},
            "spec": {"holderIdentity": "a", "leaseDurationSeconds": 15}}),
        ),
        (
            "discovery.k8s.io",
            "EndpointSlice",
            json!({"metadata": {"name": "web-abc", "namespace": "default"},
            "addressType": "IPv4", "endpoints": [{"addresses": ["10.244.0.5"]}],
            "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}),
        ),
        (
            "policy",
            "PodDisruptionBudget",
            json!({"metadata": {"name": "p", "namespace": "default"},
            "spec": {"minAvailable": "50%", "selector": {"matchLabels": {"app": "web"}}}}),
        ),
        (
            "scheduling.k8s.io",
            "PriorityClass",
            json!({"metadata": {"name": "high"}, "value": 1000000}),
        ),
        (
            "scheduling.k8s.io",
            "PriorityClass",
            json!({"metadata": {"name": "system-node-critical"}, "value": 2000001000}),
        ),
        (
            "rbac.authorization.k8s.io",
            "ClusterRole",
            json!({"metadata": {"name": "system:reader"},
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]},
                      {"nonResourceURLs": ["/healthz"], "verbs": ["get"]}]}),
        ),
        (
            "rbac.authorization.k8s.io",
            "RoleBinding",
            json!({"metadata": {"name": "rb", "namespace": "default"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
            "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": "default"},
                         {"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "jane"}]}),
        ),
        (
            "",
            "LimitRange",
            json!({"metadata": {"name": "lr", "namespace": "default"},
            "spec": {"limits": [{"type": "Container", "default": {"cpu": "500m"}, "defaultRequest": {"cpu": "250m"},
                "max": {"cpu": "1"}, "min": {"cpu": "100m"}}]}}),
        ),
        (
            "",
            "ResourceQuota",
            json!({"metadata": {"name": "rq", "namespace": "default"},
            "spec": {"hard": {"pods": "10", "requests.cpu": "4", "count/deployments.apps": "5"}}}),
        ),
        (
            "",
            "Event",
            json!({"metadata": {"name": "web.17", "namespace": "default"},
            "involvedObject": {"kind": "Pod", "name": "web", "namespace": "default"}, "reason": "Started",
            "message": "Started container", "type": "Normal"}),
        ),
        (
            "example.com",
            "Widget",
            json!({"metadata": {"name": "w", "namespace": "default", "finalizers": ["example.com/x"]}}),
        ),
    ];
    for (group, kind, obj) in cases {
        let errs = validate_create(group, kind, &obj);
        assert!(errs.is_empty(), "{kind}: {:?}", causes(&errs));
    }
}

#[test]
fn metadata_rules() {
    let inv = "FieldValueInvalid";
    expect(
        validate_create(
            "",
            "ConfigMap",
            &with(config_map(), "/metadata/name", json!("Bad_Name")),
        ),
        &[(
            "metadata.name",
            inv,
            &format!("Invalid value: \"Bad_Name\": {SUBDOMAIN_MSG}"),
        )],
    );
    expect(
        validate_create(
            "",
            "ConfigMap",
            &with(config_map(), "/metadata/name", Value::Null),
        ),
        &[(
            "metadata.name",
            "FieldValueRequired",
            "Required value: name or generateName is required",
        )],
    );
    expect(
        validate_create(
            "",
            "ConfigMap",
            &with(config_map(), "/metadata/namespace", Value::Null),
        ),
        &[("metadata.namespace", "FieldValueRequired", "Required value")],
    );
    expect(
        validate_create(
            "",
            "Namespace",
            &json!({"metadata": {"name": "a.b", "namespace": "x"}}),
        ),
        &[
            (
                "metadata.name",
                inv,
                "Invalid value: \"a.b\": must not contain dots",
            ),
            (
                "metadata.namespace",
                "FieldValueForbidden",
                "Forbidden: not allowed on this type",
            ),
        ],
    );
    expect(
        validate_create("", "Service", &with(service(), "/metadata/name", json!("1web"))),
        &[("metadata.name", inv, "Invalid value: \"1web\": a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')")],
    );
    expect(
        validate_create(
            "rbac.authorization.k8s.io",
            "ClusterRole",
            &json!({"metadata": {"name": "a/b"}}),
        ),
        &[(
            "metadata.name",
            inv,
            "Invalid value: \"a/b\": may not contain '/'",
        )],
    );
    let labeled = with(
        config_map(),
        "/metadata/labels",
        json!({"app": "-bad", "a/b/c": "x"}),
    );
    let errs = validate_create("", "ConfigMap", &labeled);
    assert_eq!(errs.len(), 2);
    assert!(errs
        .iter()
        .all(|e| e.field == "metadata.labels" && e.reason() == inv));
    assert!(errs[1]
        .message()
        .starts_with("Invalid value: \"-bad\": a valid label must be an empty string"));
    let big = json!({"a": "x".repeat(262_144)});
    expect(
        validate_create(
            "",
            "ConfigMap",
            &with(config_map(), "/metadata/annotations", big),
        ),
        &[(
            "metadata.annotations",
            "FieldValueTooLong",
            "Too long: may not be more than 262144 bytes",
        )],
    );
    expect(
        validate_create("", "ConfigMap", &with(config_map(), "/metadata/finalizers", json!(["cleanup", "example.com/ok"]))),
        &[("metadata.finalizers[0]", inv, "Invalid value: \"cleanup\": name is neither a standard finalizer name nor is it fully qualified")],
    );
    let owners = json!([{"apiVersion": "", "kind": "ReplicaSet", "name": "rs", "uid": "1"}]);
    expect(
        validate_create("", "Pod", &with(pod(), "/metadata/ownerReferences", owners)),
        &[(
            "metadata.ownerReferences.apiVersion",
            inv,
            "Invalid value: \"\": version must not be empty",
        )],
    );
    let generated = with(
        with(config_map(), "/metadata/generateName", json!("Web-")),
        "/metadata/name",
        json!("web-abcde"),
    );
    let errs = validate_create("", "ConfigMap", &generated);
    assert_eq!(
        causes(&errs)
            .iter()
            .map(|c| c.0.as_str())
            .collect::<Vec<_>>(),
        ["metadata.generateName"]
    );
}

#[test]
fn invalid_message_matches_status_message() {
    let errs = validate_create(
        "",
        "ConfigMap",
        &with(config_map(), "/metadata/name", json!("Bad_Name")),
    );
    assert_eq!(
        invalid_message("ConfigMap", "Bad_Name", &errs),
        format!("ConfigMap \"Bad_Name\" is invalid: metadata.name: Invalid value: \"Bad_Name\": {SUBDOMAIN_MSG}")
    );
}

#[test]
fn config_maps_and_secrets() {
    let inv = "FieldValueInvalid";
    expect(
        validate_create("", "ConfigMap", &with(config_map(), "/data/a b", json!("x"))),
        &[("data[a b]", inv, "Invalid value: \"a b\": a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')")],
    );
    expect(
        validate_create(
            "",
            "ConfigMap",
            &with(config_map(), "/data/big", json!("x".repeat(1024 * 1024))),
        ),
        &[(
            "",
            "FieldValueTooLong",
            "Too long: may not be more than 1048576 bytes",
        )],
    );
    expect(
        validate_create(
            "",
            "Secret",
            &json!({"metadata": {"name": "s", "namespace": "d"}, "type": "kubernetes.io/tls", "data": {"tls.crt": "YQ=="}}),
        ),
        &[("data[tls.key]", "FieldValueRequired", "Required value")],
    );
    let docker = json!({"metadata": {"name": "s", "namespace": "d"}, "type": "kubernetes.io/dockerconfigjson",
        "data": {".dockerconfigjson": "bm9wZQ=="}});
    let errs = validate_create("", "Secret", &docker);
    assert_eq!(causes(&errs).len(), 1);
    assert_eq!(
        (errs[0].field.as_str(), errs[0].reason()),
        ("data[.dockerconfigjson]", inv)
    );
    assert!(errs[0]
        .message()
        .starts_with("Invalid value: \"<secret contents redacted>\": "));
    let frozen = with(config_map(), "/immutable", json!(true));
    expect(
        validate_update(
            "",
            "ConfigMap",
            &with(frozen.clone(), "/data/a.txt", json!("changed")),
            &frozen,
        ),
        &[(
            "data",
            "FieldValueForbidden",
            "Forbidden: field is immutable when `immutable` is set",
        )],
    );
    let secret = json!({"metadata": {"name": "s", "namespace": "d", "resourceVersion": "1"}, "type": "Opaque"});
    expect(
        validate_update(
            "",
            "Secret",
            &with(secret.clone(), "/type", json!("kubernetes.io/tls")),
            &secret,
        ),
        &[
            (
                "type",
                inv,
                "Invalid value: \"kubernetes.io/tls\": field is immutable",
            ),
            ("data[tls.crt]", "FieldValueRequired", "Required value"),
            ("data[tls.key]", "FieldValueRequired", "Required value"),
        ],
    );
}

#[test]
fn deployments() {
    let inv = "FieldValueInvalid";
    expect(
        validate_create(
            "apps",
            "Deployment",
            &with(deployment(), "/spec/replicas", json!(-1)),
        ),
        &[(
            "spec.replicas",
            inv,
            "Invalid value: -1: must be greater than or equal to 0",
        )],
    );
    expect(
        validate_create("apps", "Deployment", &with(deployment(), "/spec/template/metadata/labels", json!({"app": "other"}))),
        &[("spec.template.metadata.labels", inv, "Invalid value: map[string]string{\"app\":\"other\"}: `selector` does not match template `labels`")],
    );
    expect(
        validate_create(
            "apps",
            "Deployment",
            &with(
                deployment(),
                "/spec/template/spec/restartPolicy",
                json!("Never"),
            ),
        ),
        &[(
            "spec.template.spec.restartPolicy",
            "FieldValueNotSupported",
            "Unsupported value: \"Never\": supported values: \"Always\"",
        )],
    );
    expect(
        validate_create(
            "apps",
            "Deployment",
            &with(
                deployment(),
                "/spec/strategy/rollingUpdate",
                json!({"maxUnavailable": 0, "maxSurge": "0%"}),
            ),
        ),
        &[(
            "spec.strategy.rollingUpdate.maxUnavailable",
            inv,
            "Invalid value: 0: may not be 0 when `maxSurge` is 0",
        )],
    );
    expect(
        validate_create("apps", "Deployment", &with(deployment(), "/spec/strategy/rollingUpdate/maxSurge", json!("25"))),
        &[("spec.strategy.rollingUpdate.maxSurge", inv, "Invalid value: \"25\": a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')")],
    );
    expect(
        validate_create("apps", "Deployment", &with(deployment(), "/spec/selector", Value::Null)),
        &[
            ("spec.selector", "FieldValueRequired", "Required value"),
            ("spec.template.metadata.labels", inv, "Invalid value: map[string]string{\"app\":\"web\"}: `selector` does not match template `labels`"),
        ],
    );
    expect(
        validate_create(
            "apps",
            "Deployment",
            &with(
                deployment(),
                "/spec/template/spec/containers/0/image",
                json!(""),
            ),
        ),
        &[(
            "spec.template.spec.containers[0].image",
            "FieldValueRequired",
            "Required value",
        )],
    );
    let moved = with(
        with(
            deployment(),
            "/spec/selector/matchLabels",
            json!({"app": "web2"}),
        ),
        "/spec/template/metadata/labels",
        json!({"app": "web2"}),
    );
    let errs = validate_update("apps", "Deployment", &moved, &deployment());
    assert_eq!(causes(&errs).len(), 1);
    assert_eq!(errs[0].field, "spec.selector");
    assert!(errs[0].message().ends_with(": field is immutable"));
    let scaled = with(deployment(), "/spec/replicas", json!(5));
    assert!(validate_update("apps", "Deployment", &scaled, &deployment()).is_empty());
    let renamed = with(deployment(), "/metadata/name", json!("other"));
    expect(
        validate_update("apps", "Deployment", &renamed, &deployment()),
        &[(
            "metadata.name",
            inv,
            "Invalid value: \"other\": field is immutable",
        )],
    );
}

#[test]
fn other_workloads() {
    let spec = deployment()["spec"]["template"]["spec"].clone();
    let sts = json!({"metadata": {"name": "db.x", "namespace": "default", "resourceVersion": "1"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "db"}}, "serviceName": "db",
            "podManagementPolicy": "OrderedReady", "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}},
            "template": {"metadata": {"labels": {"app": "db"}}, "spec": spec.clone()}}});
    expect(
        validate_create("apps", "StatefulSet", &sts),
        &[(
            "metadata.name",
            "FieldValueInvalid",
            "Invalid value: \"db.x\": must not contain dots",
        )],
    );
    let sts = with(sts, "/metadata/name", json!("db"));
    assert!(validate_create("apps", "StatefulSet", &sts).is_empty());
    let errs = validate_update(
        "apps",
        "StatefulSet",
        &with(sts.clone(), "/spec/serviceName", json!("other")),
        &sts,
    );
    expect_reasons(&errs, &[("spec", "FieldValueForbidden")]);
    let ds = json!({"metadata": {"name": "agent", "namespace": "kube-system"},
        "spec": {"selector": {"matchLabels": {"app": "agent"}},
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}},
            "template": {"metadata": {"labels": {"app": "agent"}}, "spec": spec}}});
    assert!(validate_create("apps", "DaemonSet", &ds).is_empty());
    expect(
        validate_create(
            "apps",
            "DaemonSet",
            &with(
                ds,
                "/spec/updateStrategy/rollingUpdate/maxUnavailable",
                json!(0),
            ),
        ),
        &[(
            "spec.updateStrategy.rollingUpdate.maxUnavailable",
            "FieldValueRequired",
            "Required value: cannot be 0 when maxSurge is 0",
        )],
    );
}

#[test]
fn jobs_and_cron_jobs() {
    expect(
        validate_create(
            "batch",
            "Job",
            &with(job(), "/spec/template/spec/restartPolicy", json!("Always")),
        ),
        &[(
            "spec.template.spec.restartPolicy",
            "FieldValueRequired",
            "Required value: valid values: \"OnFailure\", \"Never\"",
        )],
    );
    expect(
        validate_create("batch", "Job", &with(job(), "/spec/parallelism", json!(-2))),
        &[(
            "spec.parallelism",
            "FieldValueInvalid",
            "Invalid value: -2: must be greater than or equal to 0",
        )],
    );
    let errs = validate_update(
        "batch",
        "Job",
        &with(
            job(),
            "/spec/template/spec/containers/0/image",
            json!("busybox"),
        ),
        &job(),
    );
    assert_eq!(
        causes(&errs)
            .iter()
            .map(|c| c.0.as_str())
            .collect::<Vec<_>>(),
        ["spec.template"]
    );
    expect(
        validate_create(
            "batch",
            "CronJob",
            &with(cron_job(), "/spec/schedule", json!("61 * * * *")),
        ),
        &[(
            "spec.schedule",
            "FieldValueInvalid",
            "Invalid value: \"61 * * * *\": end of range (61) above maximum (59): 61",
        )],
    );
    let long = "a".repeat(53);
    expect(
        validate_create(
            "batch",
            "CronJob",
            &with(cron_job(), "/metadata/name", json!(long.clone())),
        ),
        &[(
            "metadata.name",
            "FieldValueInvalid",
            &format!("Invalid value: \"{long}\": must be no more than 52 characters"),
        )],
    );
}

#[test]
fn pods() {
    let inv = "FieldValueInvalid";
    expect(
        validate_create("", "Pod", &with(pod(), "/spec/containers", json!([]))),
        &[("spec.containers", "FieldValueRequired", "Required value")],
    );
    let port = json!([{"containerPort": 70000, "protocol": "HTTP"}]);
    expect(
        validate_create("", "Pod", &with(pod(), "/spec/containers/0/ports", port)),
        &[
            (
                "spec.containers[0].ports[0].containerPort",
                inv,
                "Invalid value: 70000: must be between 1 and 65535, inclusive",
            ),
            (
                "spec.containers[0].ports[0].protocol",
                "FieldValueNotSupported",
                "Unsupported value: \"HTTP\": supported values: \"SCTP\", \"TCP\", \"UDP\"",
            ),
        ],
    );
    let dup = with(pod(), "/spec/initContainers", json!([container()]));
    expect(
        validate_create("", "Pod", &dup),
        &[(
            "spec.initContainers[0].name",
            "FieldValueDuplicate",
            "Duplicate value: \"nginx\"",
        )],
    );
    let mounts = json!([{"name": "data", "mountPath": "/data"}]);
    expect(
        validate_create(
            "",
            "Pod",
            &with(pod(), "/spec/containers/0/volumeMounts", mounts),
        ),
        &[(
            "spec.containers[0].volumeMounts[0].name",
            "FieldValueNotFound",
            "Not found: \"data\"",
        )],
    );
    let vols =
        json!([{"name": "data", "emptyDir": {}, "hostPath": {"path": "/tmp"}}, {"name": "Bad"}]);
    expect(
        validate_create("", "Pod", &with(pod(), "/spec/volumes", vols)),
        &[
            ("spec.volumes[0].emptyDir", "FieldValueForbidden", "Forbidden: may not specify more than 1 volume type"),
            ("spec.volumes[1]", "FieldValueRequired", "Required value: must specify a volume type"),
            ("spec.volumes[1].name", inv, "Invalid value: \"Bad\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"),
        ],
    );
    let res = json!({"requests": {"cpu": "2", "memory": "1Gx"}, "limits": {"cpu": "1"}});
    expect(
        validate_create("", "Pod", &with(pod(), "/spec/containers/0/resources", res)),
        &[
            ("spec.containers[0].resources.requests", inv, "Invalid value: \"2\": must be less than or equal to cpu limit of 1"),
            ("spec.containers[0].resources.requests[memory]", inv, "Invalid value: \"1Gx\": quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"),
        ],
    );
    expect(
        validate_create(
            "",
            "Pod",
            &with(
                pod(),
                "/spec/containers/0/livenessProbe",
                json!({"periodSeconds": 10}),
            ),
        ),
        &[(
            "spec.containers[0].livenessProbe",
            "FieldValueRequired",
            "Required value: must specify a handler type",
        )],
    );
    expect(
        validate_create("", "Pod", &with(pod(), "/spec/restartPolicy", json!("Sometimes"))),
        &[("spec.restartPolicy", "FieldValueNotSupported", "Unsupported value: \"Sometimes\": supported values: \"Always\", \"OnFailure\", \"Never\"")],
    );
    expect(
        validate_create("", "Pod", &with(pod(), "/spec/containers/0/env", json!([{"name": "A=B"}]))),
        &[("spec.containers[0].env[0].name", inv, "Invalid value: \"A=B\": a valid environment variable name must consist only of printable ASCII characters other than '='")],
    );
}

#[test]
fn pod_updates() {
    let new_image = with(pod(), "/spec/containers/0/image", json!("nginx:2"));
    assert!(validate_update("", "Pod", &new_image, &pod()).is_empty());
    let added = with(
        pod(),
        "/spec/tolerations",
        json!([{"key": "k", "operator": "Exists", "effect": "NoSchedule"}]),
    );
    assert!(validate_update("", "Pod", &added, &pod()).is_empty());
    let errs = validate_update(
        "",
        "Pod",
        &with(pod(), "/spec/dnsPolicy", json!("Default")),
        &pod(),
    );
    assert_eq!(causes(&errs).len(), 1);
    assert_eq!(
        (errs[0].field.as_str(), errs[0].reason()),
        ("spec", "FieldValueForbidden")
    );
    assert!(errs[0].message().contains("spec.dnsPolicy"));
    let more = with(
        pod(),
        "/spec/containers/1",
        with(container(), "/name", json!("side")),
    );
    expect(
        validate_update("", "Pod", &more, &pod()),
        &[(
            "spec.containers",
            "FieldValueForbidden",
            "Forbidden: pod updates may not add or remove containers",
        )],
    );
    expect(
        validate_update(
            "",
            "Pod",
            &with(pod(), "/metadata/resourceVersion", Value::Null),
            &pod(),
        ),
        &[(
            "metadata.resourceVersion",
            "FieldValueInvalid",
            "Invalid value: \"\": must be specified for an update",
        )],
    );
}

#[test]
fn services() {
    let two = json!([{"port": 80, "protocol": "TCP", "targetPort": 80}, {"port": 443, "protocol": "TCP", "targetPort": 443}]);
    expect(
        validate_create("", "Service", &with(service(), "/spec/ports", two)),
        &[
            ("spec.ports[0].name", "FieldValueRequired", "Required value"),
            ("spec.ports[1].name", "FieldValueRequired", "Required value"),
        ],
    );
    expect(
        validate_create("", "Service", &with(service(), "/spec/type", json!("Internal"))),
        &[("spec.type", "FieldValueNotSupported", "Unsupported value: \"Internal\": supported values: \"ClusterIP\", \"ExternalName\", \"LoadBalancer\", \"NodePort\"")],
    );
    let headless = with(
        with(
            with(service(), "/spec/ports", json!([])),
            "/spec/clusterIP",
            json!("None"),
        ),
        "/spec/clusterIPs",
        json!(["None"]),
    );
    assert!(validate_create("", "Service", &headless).is_empty());
    expect(
        validate_create("", "Service", &with(service(), "/spec/ports", json!([]))),
        &[("spec.ports", "FieldValueRequired", "Required value")],
    );
    let dual = with(
        with(
            service(),
            "/spec/clusterIPs",
            json!(["10.96.0.10", "fd00::a"]),
        ),
        "/spec/ipFamilies",
        json!(["IPv4", "IPv6"]),
    );
    assert!(validate_create(
        "",
        "Service",
        &with(
            dual.clone(),
            "/spec/ipFamilyPolicy",
            json!("PreferDualStack")
        )
    )
    .is_empty());
    expect(
        validate_create("", "Service", &with(dual.clone(), "/spec/ipFamilies", json!(["IPv6", "IPv4"]))),
        &[
            ("spec.clusterIPs[0]", "FieldValueInvalid", "Invalid value: \"10.96.0.10\": expected an IPv6 value as indicated by `ipFamilies[0]`"),
            ("spec.clusterIPs[1]", "FieldValueInvalid", "Invalid value: \"fd00::a\": expected an IPv4 value as indicated by `ipFamilies[1]`"),
        ],
    );
    expect(
        validate_create("", "Service", &with(dual, "/spec/clusterIPs", json!(["10.96.0.10", "10.96.0.11"]))),
        &[
            ("spec.clusterIPs", "FieldValueInvalid", "Invalid value: []string{\"10.96.0.10\", \"10.96.0.11\"}: may specify no more than one IP for each IP family"),
            ("spec.clusterIPs[1]", "FieldValueInvalid", "Invalid value: \"10.96.0.11\": expected an IPv6 value as indicated by `ipFamilies[1]`"),
        ],
    );
    let moved = with(
        with(service(), "/spec/clusterIP", json!("10.96.0.11")),
        "/spec/clusterIPs",
        json!(["10.96.0.11"]),
    );
    expect(
        validate_update("", "Service", &moved, &service()),
        &[(
            "spec.clusterIPs[0]",
            "FieldValueInvalid",
            "Invalid value: []string{\"10.96.0.11\"}: may not change once set",
        )],
    );
}

#[test]
fn cluster_and_policy_kinds() {
    let inv = "FieldValueInvalid";
    expect(
        validate_create("policy", "PodDisruptionBudget", &json!({"metadata": {"name": "p", "namespace": "d"},
            "spec": {"minAvailable": 1, "maxUnavailable": "150%"}})),
        &[
            ("spec", inv, "Invalid value: {\"maxUnavailable\":\"150%\",\"minAvailable\":1}: minAvailable and maxUnavailable cannot be both set"),
            ("spec.maxUnavailable", inv, "Invalid value: \"150%\": must not be greater than 100%"),
        ],
    );
    expect(
        validate_create(
            "scheduling.k8s.io",
            "PriorityClass",
            &json!({"metadata": {"name": "huge"}, "value": 2000000000}),
        ),
        &[(
            "value",
            "FieldValueForbidden",
            "Forbidden: maximum allowed value of a user defined priority is 1000000000",
        )],
    );
    expect(
        validate_create("scheduling.k8s.io", "PriorityClass", &json!({"metadata": {"name": "system-mine"}, "value": 1})),
        &[("metadata.name", "FieldValueForbidden", "Forbidden: priority class names with 'system-' prefix are reserved for system use only. error: system-mine is not a known system priority class")],
    );
    expect(
        validate_create(
            "rbac.authorization.k8s.io",
            "Role",
            &json!({"metadata": {"name": "r", "namespace": "d"},
            "rules": [{"apiGroups": [""], "resources": ["pods"]}]}),
        ),
        &[(
            "rules[0].verbs",
            "FieldValueRequired",
            "Required value: verbs must contain at least one value",
        )],
    );
    let rb = json!({"metadata": {"name": "rb", "namespace": "d", "resourceVersion": "1"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "a"}});
    let errs = validate_update(
        "rbac.authorization.k8s.io",
        "RoleBinding",
        &with(rb.clone(), "/roleRef/name", json!("b")),
        &rb,
    );
    expect_reasons(&errs, &[("roleRef", inv)]);
    assert!(errs[0].message().ends_with("cannot change roleRef"));
    expect(
        validate_create(
            "discovery.k8s.io",
            "EndpointSlice",
            &json!({"metadata": {"name": "e", "namespace": "d"},
            "addressType": "IPv4", "endpoints": [{"addresses": ["10.0.0.300"]}, {"addresses": []}]}),
        ),
        &[
            (
                "endpoints[0].addresses[0]",
                inv,
                "Invalid value: \"10.0.0.300\": must be a valid IPv4 address",
            ),
            (
                "endpoints[1].addresses",
                "FieldValueRequired",
                "Required value: must contain at least 1 address",
            ),
        ],
    );
    expect(
        validate_create(
            "discovery.k8s.io",
            "EndpointSlice",
            &json!({"metadata": {"name": "e", "namespace": "d"}, "addressType": "IP"}),
        ),
        &[(
            "addressType",
            "FieldValueNotSupported",
            "Unsupported value: \"IP\": supported values: \"FQDN\", \"IPv4\", \"IPv6\"",
        )],
    );
    expect(
        validate_create(
            "coordination.k8s.io",
            "Lease",
            &json!({"metadata": {"name": "l", "namespace": "d"}, "spec": {"leaseDurationSeconds": 0}}),
        ),
        &[(
            "spec.leaseDurationSeconds",
            inv,
            "Invalid value: 0: must be greater than 0",
        )],
    );
    expect(
        validate_create(
            "",
            "LimitRange",
            &json!({"metadata": {"name": "l", "namespace": "d"},
            "spec": {"limits": [{"type": "Container", "min": {"cpu": "2"}, "max": {"cpu": "1"}}]}}),
        ),
        &[(
            "spec.limits[0].min[cpu]",
            inv,
            "Invalid value: \"2\": min value 2 is greater than max value 1",
        )],
    );
    expect(
        validate_create(
            "",
            "ResourceQuota",
            &json!({"metadata": {"name": "q", "namespace": "d"}, "spec": {"hard": {"pods": "1.5"}}}),
        ),
        &[(
            "spec.hard[pods]",
            inv,
            "Invalid value: \"1.5\": must be an integer",
        )],
    );
    expect(
        validate_create("", "Node", &json!({"metadata": {"name": "n"}, "spec": {"taints": [{"key": "k", "effect": "Sometimes"}]}})),
        &[("spec.taints[0].effect", "FieldValueNotSupported", "Unsupported value: \"Sometimes\": supported values: \"NoSchedule\", \"PreferNoSchedule\", \"NoExecute\"")],
    );
    expect(
        validate_create(
            "",
            "Event",
            &json!({"metadata": {"name": "e", "namespace": "a"}, "involvedObject": {"namespace": "b"}}),
        ),
        &[(
            "involvedObject.namespace",
            inv,
            "Invalid value: \"b\": does not match event.namespace",
        )],
    );
}

#[test]
fn odd_shapes_do_not_panic() {
    let odd = [
        json!(null),
        json!("pod"),
        json!({"metadata": "x", "spec": 5}),
        json!({"metadata": {"name": 5, "labels": ["a"]}, "spec": {"containers": {"a": 1}, "volumes": "v"}}),
        json!({"metadata": {"name": "x", "namespace": "d"}, "spec": {"containers": [5, {"ports": "p", "env": [1]}]}}),
    ];
    for (group, kind) in [
        ("", "Pod"),
        ("apps", "Deployment"),
        ("apps", "StatefulSet"),
        ("apps", "DaemonSet"),
        ("batch", "Job"),
        ("batch", "CronJob"),
        ("", "Service"),
        ("", "ConfigMap"),
        ("", "Secret"),
        ("", "Node"),
        ("", "Event"),
        ("discovery.k8s.io", "EndpointSlice"),
        ("rbac.authorization.k8s.io", "RoleBinding"),
        ("", "LimitRange"),
    ] {
        for obj in &odd[..4] {
            assert!(
                !validate_create(group, kind, obj).is_empty(),
                "{kind} {obj}"
            );
        }
        for obj in &odd {
            let _ = validate_create(group, kind, obj);
            let _ = validate_update(group, kind, obj, &odd[2]);
        }
    }
    let errs = validate_create("", "Pod", &odd[3]);
    assert!(
        errs.iter()
            .any(|e| e.field == "metadata.name"
                && e.message() == "Invalid value: 5: must be a string")
    );
}

fn messages(errs: &[FieldError]) -> Vec<String> {
    errs.iter().map(ToString::to_string).collect()
}

#[test]
fn claims_need_access_modes_and_positive_storage() {
    let pvc = json!({"metadata": {"name": "data", "namespace": "d"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}, "volumeMode": "Filesystem"}});
    assert!(validate_create("", "PersistentVolumeClaim", &pvc).is_empty());
    let bad = with(
        with(pvc.clone(), "/spec/accessModes", json!(["Sometimes"])),
        "/spec/resources/requests/storage",
        json!("0"),
    );
    assert_eq!(
        messages(&validate_create("", "PersistentVolumeClaim", &bad)),
        vec![
            "spec.accessModes: Unsupported value: \"Sometimes\": supported values: \"ReadOnlyMany\", \"ReadWriteMany\", \"ReadWriteOnce\", \"ReadWriteOncePod\"",
            "spec.resources[storage]: Invalid value: \"0\": must be greater than zero",
        ]
    );
    let empty = json!({"metadata": {"name": "data", "namespace": "d"}, "spec": {}});
    assert_eq!(
        messages(&validate_create("", "PersistentVolumeClaim", &empty)),
        vec![
            "spec.accessModes: Required value: at least 1 access mode is required",
            "spec.resources[storage]: Required value",
        ]
    );
}

#[test]
fn volumes_need_capacity_and_one_source() {
    let pv = json!({"metadata": {"name": "pv"}, "spec": {"accessModes": ["ReadWriteOnce"],
        "capacity": {"storage": "5Gi"}, "hostPath": {"path": "/data"}, "persistentVolumeReclaimPolicy": "Retain"}});
    assert!(validate_create("", "PersistentVolume", &pv).is_empty());
    let bad = with(
        with(pv, "/spec/hostPath", Value::Null),
        "/spec/capacity",
        Value::Null,
    );
    assert_eq!(
        messages(&validate_create("", "PersistentVolume", &bad)),
        vec![
            "spec.capacity: Required value",
            "spec: Required value: must specify a volume type",
        ]
    );
}

#[test]
fn storage_classes_need_a_provisioner_and_keep_it() {
    let sc = json!({"metadata": {"name": "fast"}, "provisioner": "example.com/fast",
        "reclaimPolicy": "Delete", "volumeBindingMode": "Immediate", "parameters": {"type": "ssd"}});
    assert!(validate_create("storage.k8s.io", "StorageClass", &sc).is_empty());
    let bad = with(
        with(sc.clone(), "/provisioner", Value::Null),
        "/reclaimPolicy",
        json!("Keep"),
    );
    assert_eq!(
        messages(&validate_create("storage.k8s.io", "StorageClass", &bad)),
        vec![
            "provisioner: Required value",
            "reclaimPolicy: Unsupported value: \"Keep\": supported values: \"Delete\", \"Retain\"",
        ]
    );
    let mut old = sc.clone();
    old["metadata"]["resourceVersion"] = json!("1");
    let changed = with(
        with(old.clone(), "/parameters", json!({"type": "hdd"})),
        "/volumeBindingMode",
        json!("WaitForFirstConsumer"),
    );
    assert_eq!(
        messages(&validate_update(
            "storage.k8s.io",
            "StorageClass",
            &changed,
            &old
        )),
        vec![
            "parameters: Forbidden: updates to parameters are forbidden.",
            "volumeBindingMode: Invalid value: \"WaitForFirstConsumer\": field is immutable",
        ]
    );
}

#[test]
fn autoscalers_need_bounds_and_a_target() {
    let hpa = json!({"metadata": {"name": "web", "namespace": "d"}, "spec": {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
        "minReplicas": 2, "maxReplicas": 5}});
    assert!(validate_create("autoscaling", "HorizontalPodAutoscaler", &hpa).is_empty());
    let bad = with(
        with(
            with(hpa, "/spec/minReplicas", json!(3)),
            "/spec/maxReplicas",
            json!(2),
        ),
        "/spec/scaleTargetRef/name",
        Value::Null,
    );
    assert_eq!(
        messages(&validate_create(
            "autoscaling",
            "HorizontalPodAutoscaler",
            &bad
        )),
        vec![
            "spec.maxReplicas: Invalid value: 2: must be greater than or equal to `minReplicas`",
            "spec.scaleTargetRef.name: Required value",
        ]
    );
}

#[test]
fn ingress_paths_need_a_type_and_absolute_paths() {
    let ing = json!({"metadata": {"name": "web", "namespace": "d"}, "spec": {"rules": [{"http": {"paths": [
        {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "web", "port": {"number": 80}}}},
        {"path": "api", "pathType": "Exact", "backend": {"service": {"name": "web", "port": {"number": 80}}}},
        {"path": "/x", "backend": {"service": {"name": "web", "port": {"number": 80}}}}
    ]}}]}});
    assert_eq!(
        messages(&validate_create("networking.k8s.io", "Ingress", &ing)),
        vec![
            "spec.rules[0].http.paths[1].path: Invalid value: \"api\": must be an absolute path",
            "spec.rules[0].http.paths[2].pathType: Required value: pathType must be specified",
        ]
    );
}

#[test]
fn replication_controllers_need_a_matching_selector() {
    let rc = json!({"metadata": {"name": "rc", "namespace": "d"}, "spec": {"replicas": 1, "selector": {"app": "rc"},
        "template": {"metadata": {"labels": {"app": "rc"}}, "spec": {"restartPolicy": "Always", "dnsPolicy": "ClusterFirst",
        "terminationGracePeriodSeconds": 30, "containers": [{"name": "c", "image": "busybox:1", "imagePullPolicy": "IfNotPresent",
        "terminationMessagePolicy": "File"}]}}}});
    let mut defaulted = rc.clone();
    crate::defaults::apply("", "ReplicationController", &mut defaulted);
    assert_eq!(
        messages(&validate_create("", "ReplicationController", &defaulted)),
        Vec::<String>::new()
    );
    let bad = with(
        with(defaulted, "/spec/replicas", json!(-1)),
        "/spec/selector",
        json!({"app": "other"}),
    );
    assert_eq!(
        messages(&validate_create("", "ReplicationController", &bad)),
        vec![
            "spec.replicas: Invalid value: -1: must be greater than or equal to 0",
            "spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"rc\"}: selector does not match template labels",
        ]
    );
}
