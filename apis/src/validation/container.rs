//! Containers of a pod spec: names, images, ports, env, mounts, pull policy, resources, probes
//! and the rules that differ between regular, init and sidecar containers.

use super::access::{self, Errors};
use super::field_error::FieldError;
use super::names::{
    is_config_map_key, is_dns1123_label, is_dns1123_subdomain, is_env_var_name, is_valid_port_name,
    is_valid_port_num,
};
use super::path::Path;
use super::probe::{validate_lifecycle, validate_probe, ProbeKind};
use super::resources::validate_container_resources;
use super::volume::validate_local_descending_path;
use serde_json::Value;

const PROTOCOLS: &[&str] = &["SCTP", "TCP", "UDP"];

const FIELD_REFS: &[&str] = &[
    "metadata.annotations",
    "metadata.labels",
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
    "spec.nodeName",
    "spec.serviceAccountName",
    "status.hostIP",
    "status.hostIPs",
    "status.podIP",
    "status.podIPs",
];

fn validate_ports(ctr: &Value, path: &Path, errs: &mut Errors) {
    let ports_path = path.child("ports");
    let mut names: Vec<&str> = Vec::new();
    for (i, port) in access::array(ctr, "ports", path, errs).iter().enumerate() {
        let p = ports_path.index(i);
        let name = access::str_or_empty(port, "name", &p, errs);
        if !name.is_empty() {
            let msgs = is_valid_port_name(name);
            if !msgs.is_empty() {
                for msg in msgs {
                    errs.push(FieldError::invalid(&p.child("name"), name, &msg));
                }
            } else if names.contains(&name) {
                errs.push(FieldError::duplicate(&p.child("name"), name));
            } else {
                names.push(name);
            }
        }
        let container_port = access::integer(port, "containerPort", &p, errs).unwrap_or(0);
        if container_port == 0 {
            errs.push(FieldError::required(&p.child("containerPort"), ""));
        } else {
            for msg in is_valid_port_num(container_port) {
                errs.push(FieldError::invalid(
                    &p.child("containerPort"),
                    container_port,
                    &msg,
                ));
            }
        }
        let host_port = access::integer(port, "hostPort", &p, errs).unwrap_or(0);
        if host_port != 0 {
            for msg in is_valid_port_num(host_port) {
                errs.push(FieldError::invalid(&p.child("hostPort"), host_port, &msg));
            }
        }
        let protocol = access::str_or_empty(port, "protocol", &p, errs);
        if protocol.is_empty() {
            errs.push(FieldError::required(&p.child("protocol"), ""));
        } else if !PROTOCOLS.contains(&protocol) {
            errs.push(FieldError::not_supported(
                &p.child("protocol"),
                protocol,
                PROTOCOLS,
            ));
        }
    }
}

fn validate_key_selector(sel: &Value, path: &Path, errs: &mut Errors) {
    let name = access::str_or_empty(sel, "name", path, errs);
    if !name.is_empty() {
        for msg in is_dns1123_subdomain(name) {
            errs.push(FieldError::invalid(&path.child("name"), name, &msg));
        }
    }
    let key = access::str_or_empty(sel, "key", path, errs);
    if key.is_empty() {
        errs.push(FieldError::required(&path.child("key"), ""));
    } else {
        for msg in is_config_map_key(key) {
            errs.push(FieldError::invalid(&path.child("key"), key, &msg));
        }
    }
}

fn validate_field_ref(sel: &Value, path: &Path, errs: &mut Errors) {
    if access::str_or_empty(sel, "apiVersion", path, errs).is_empty() {
        errs.push(FieldError::required(&path.child("apiVersion"), ""));
    }
    let field_path = access::str_or_empty(sel, "fieldPath", path, errs);
    if field_path.is_empty() {
        errs.push(FieldError::required(&path.child("fieldPath"), ""));
        return;
    }
    let subscripted = ["metadata.labels", "metadata.annotations"]
        .iter()
        .any(|p| field_path.starts_with(&format!("{p}['")) && field_path.ends_with("']"));
    if !subscripted && !FIELD_REFS.contains(&field_path) {
        errs.push(FieldError::not_supported(
            &path.child("fieldPath"),
            field_path,
            FIELD_REFS,
        ));
    }
}

fn validate_env(ctr: &Value, path: &Path, errs: &mut Errors) {
    let env_path = path.child("env");
    for (i, ev) in access::array(ctr, "env", path, errs).iter().enumerate() {
        let p = env_path.index(i);
        let name = access::str_or_empty(ev, "name", &p, errs);
        if name.is_empty() {
            errs.push(FieldError::required(&p.child("name"), ""));
        } else {
            for msg in is_env_var_name(name) {
                errs.push(FieldError::invalid(&p.child("name"), name, &msg));
            }
        }
        let Some(from) = access::object(ev, "valueFrom", &p, errs) else {
            continue;
        };
        let from_path = p.child("valueFrom");
        let sources = [
            "fieldRef",
            "resourceFieldRef",
            "configMapKeyRef",
            "secretKeyRef",
        ];
        let mut count = 0;
        for key in sources {
            let Some(src) = access::object(from, key, &from_path, errs) else {
                continue;
            };
            count += 1;
            match key {
                "fieldRef" => validate_field_ref(src, &from_path.child(key), errs),
                "resourceFieldRef" => {
                    if access::str_or_empty(src, "resource", &from_path.child(key), errs).is_empty()
                    {
                        errs.push(FieldError::required(
                            &from_path.child(key).child("resource"),
                            "",
                        ));
                    }
                }
                _ => validate_key_selector(src, &from_path.child(key), errs),
            }
        }
        if count != 0 && !access::str_or_empty(ev, "value", &p, errs).is_empty() {
            errs.push(FieldError::invalid(
                &from_path,
                "",
                "may not be specified when `value` is not empty",
            ));
        } else {
            validate_one_source(
                count,
                "`fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`",
                &from_path,
                errs,
            );
        }
    }
}

/// A `valueFrom` or `envFrom` entry sets exactly one of its sources (`sources` names them).
fn validate_one_source(count: usize, sources: &str, path: &Path, errs: &mut Errors) {
    if count == 0 {
        errs.push(FieldError::invalid(
            path,
            "",
            &format!("must specify one of: {sources}"),
        ));
    } else if count > 1 {
        errs.push(FieldError::invalid(
            path,
            "",
            "may not have more than one field specified at a time",
        ));
    }
}

fn validate_env_from(ctr: &Value, path: &Path, errs: &mut Errors) {
    let list_path = path.child("envFrom");
    for (i, ef) in access::array(ctr, "envFrom", path, errs).iter().enumerate() {
        let p = list_path.index(i);
        let prefix = access::str_or_empty(ef, "prefix", &p, errs);
        if !prefix.is_empty() {
            for msg in is_env_var_name(prefix) {
                errs.push(FieldError::invalid(&p.child("prefix"), prefix, &msg));
            }
        }
        let mut count = 0;
        for key in ["configMapRef", "secretRef"] {
            if let Some(r) = access::object(ef, key, &p, errs) {
                count += 1;
                let name = access::str_or_empty(r, "name", &p.child(key), errs);
                for msg in is_dns1123_subdomain(name) {
                    errs.push(FieldError::invalid(&p.child(key).child("name"), name, &msg));
                }
            }
        }
        validate_one_source(count, "`configMapRef` or `secretRef`", &p, errs);
    }
}

fn validate_volume_mounts(ctr: &Value, volumes: &[String], path: &Path, errs: &mut Errors) {
    let mounts_path = path.child("volumeMounts");
    let mut mount_points: Vec<&str> = Vec::new();
    for (i, m) in access::array(ctr, "volumeMounts", path, errs)
        .iter()
        .enumerate()
    {
        let p = mounts_path.index(i);
        let name = access::str_or_empty(m, "name", &p, errs);
        if name.is_empty() {
            errs.push(FieldError::required(&p.child("name"), ""));
        }
        if !volumes.iter().any(|v| v == name) {
            errs.push(FieldError::not_found(&p.child("name"), name));
        }
        let mount_path = access::str_or_empty(m, "mountPath", &p, errs);
        if mount_path.is_empty() {
            errs.push(FieldError::required(&p.child("mountPath"), ""));
        }
        if mount_points.contains(&mount_path) {
            errs.push(FieldError::invalid(
                &p.child("mountPath"),
                mount_path,
                "must be unique",
            ));
        }
        mount_points.push(mount_path);
        let sub_path = access::str_or_empty(m, "subPath", &p, errs);
        if !sub_path.is_empty() {
            validate_local_descending_path(sub_path, &mounts_path.child("subPath"), errs);
        }
        if let Some(prop) = access::string(m, "mountPropagation", &p, errs) {
            let valid = ["None", "HostToContainer", "Bidirectional"];
            if !valid.contains(&prop) {
                errs.push(FieldError::not_supported(
                    &p.child("mountPropagation"),
                    prop,
                    &valid,
                ));
            }
        }
    }
}

fn validate_enum(ctr: &Value, key: &str, valid: &[&str], path: &Path, errs: &mut Errors) {
    let value = access::str_or_empty(ctr, key, path, errs);
    if value.is_empty() {
        errs.push(FieldError::required(&path.child(key), ""));
    } else if !valid.contains(&value) {
        errs.push(FieldError::not_supported(&path.child(key), value, valid));
    }
}

/// Security context checks shared by pods and containers.
pub fn validate_security_ids(sc: &Value, path: &Path, errs: &mut Errors) {
    for key in ["runAsUser", "runAsGroup"] {
        if let Some(id) = access::integer(sc, key, path, errs) {
            if !(0..=i64::from(i32::MAX)).contains(&id) {
                errs.push(FieldError::invalid(
                    &path.child(key),
                    id,
                    "must be between 0 and 2147483647, inclusive",
                ));
            }
        }
    }
}

/// Upstream `validateContainerCommon`: what every container kind must satisfy.
fn validate_container_common(ctr: &Value, volumes: &[String], path: &Path, errs: &mut Errors) {
    let name = access::str_or_empty(ctr, "name", path, errs);
    if name.is_empty() {
        errs.push(FieldError::required(&path.child("name"), ""));
    } else {
        for msg in is_dns1123_label(name) {
            errs.push(FieldError::invalid(&path.child("name"), name, &msg));
        }
    }
    if access::str_or_empty(ctr, "image", path, errs).is_empty() {
        errs.push(FieldError::required(&path.child("image"), ""));
    }
    validate_enum(
        ctr,
        "terminationMessagePolicy",
        &["File", "FallbackToLogsOnError"],
        path,
        errs,
    );
    validate_ports(ctr, path, errs);
    validate_env(ctr, path, errs);
    validate_env_from(ctr, path, errs);
    validate_volume_mounts(ctr, volumes, path, errs);
    validate_enum(
        ctr,
        "imagePullPolicy",
        &["Always", "IfNotPresent", "Never"],
        path,
        errs,
    );
    if let Some(res) = access::object(ctr, "resources", path, errs) {
        validate_container_resources(res, &path.child("resources"), errs);
    }
    if let Some(sc) = access::object(ctr, "securityContext", path, errs) {
        validate_security_ids(sc, &path.child("securityContext"), errs);
    }
}

fn validate_probes(ctr: &Value, path: &Path, errs: &mut Errors) {
    if let Some(l) = access::object(ctr, "lifecycle", path, errs) {
        validate_lifecycle(l, &path.child("lifecycle"), errs);
    }
    for (key, kind) in [
        ("livenessProbe", ProbeKind::Liveness),
        ("readinessProbe", ProbeKind::Readiness),
        ("startupProbe", ProbeKind::Startup),
    ] {
        if let Some(probe) = access::object(ctr, key, path, errs) {
            validate_probe(probe, kind, &path.child(key), errs);
        }
    }
}

/// Upstream `validateContainers`: at least one, names unique, plus every container's checks.
/// Returns the names seen, which init containers must not reuse.
pub fn validate_containers(
    spec: &Value,
    volumes: &[String],
    path: &Path,
    errs: &mut Errors,
) -> Vec<String> {
    let list_path = path.child("containers");
    let containers = access::array(spec, "containers", path, errs);
    let mut names: Vec<String> = Vec::new();
    if containers.is_empty() {
        errs.push(FieldError::required(&list_path, ""));
        return names;
    }
    for (i, ctr) in containers.iter().enumerate() {
        let p = list_path.index(i);
        validate_container_common(ctr, volumes, &p, errs);
        validate_unique_name(ctr, &mut names, &p, errs);
        validate_probes(ctr, &p, errs);
        if access::get(ctr, "restartPolicy").is_some() {
            errs.push(FieldError::forbidden(
                &p.child("restartPolicy"),
                "may not be set for non-init containers",
            ));
        }
    }
    names
}

/// A container's name may not repeat one in `names`; a new one is added to them.
fn validate_unique_name(ctr: &Value, names: &mut Vec<String>, path: &Path, errs: &mut Errors) {
    let name = access::get(ctr, "name")
        .and_then(Value::as_str)
        .unwrap_or("");
    if names.iter().any(|n| n == name) {
        errs.push(FieldError::duplicate(&path.child("name"), name));
    } else {
        names.push(name.to_string());
    }
}

/// Upstream `validateInitContainers`: names unique across all containers; only sidecars
/// (`restartPolicy: Always`) may have probes and lifecycle hooks.
pub fn validate_init_containers(
    spec: &Value,
    volumes: &[String],
    mut names: Vec<String>,
    path: &Path,
    errs: &mut Errors,
) {
    let list_path = path.child("initContainers");
    for (i, ctr) in access::array(spec, "initContainers", path, errs)
        .iter()
        .enumerate()
    {
        let p = list_path.index(i);
        validate_container_common(ctr, volumes, &p, errs);
        validate_unique_name(ctr, &mut names, &p, errs);
        let restart = access::string(ctr, "restartPolicy", &p, errs);
        match restart {
            Some("Always") => validate_probes(ctr, &p, errs),
            Some(other) => errs.push(FieldError::not_supported(
                &p.child("restartPolicy"),
                other,
                &["Always"],
            )),
            None => {
                for (key, what) in [
                    ("lifecycle", "lifecycle"),
                    ("livenessProbe", "livenessProbe"),
                    ("readinessProbe", "readinessProbe"),
                    ("startupProbe", "startupProbe"),
                ] {
                    if access::get(ctr, key).is_some() {
                        errs.push(FieldError::forbidden(
                            &p.child(what),
                            "may not be set for init containers without restartPolicy=Always",
                        ));
                    }
                }
            }
        }
    }
}

/// Upstream `AccumulateUniqueHostPorts`: a host IP/protocol/port may be claimed once per pod.
pub fn validate_host_ports(spec: &Value, path: &Path, errs: &mut Errors) {
    let mut seen: Vec<String> = Vec::new();
    for list in ["containers"] {
        let list_path = path.child(list);
        let mut scratch = Errors::new();
        for (ci, ctr) in access::array(spec, list, path, &mut scratch)
            .iter()
            .enumerate()
        {
            for (pi, port) in access::array(ctr, "ports", &list_path, &mut scratch)
                .iter()
                .enumerate()
            {
                let host_port = access::get(port, "hostPort")
                    .and_then(Value::as_i64)
                    .unwrap_or(0);
                if host_port == 0 {
                    continue;
                }
                let host_ip = access::get(port, "hostIP")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                let protocol = access::get(port, "protocol")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                let key = format!("{host_ip}/{protocol}/{host_port}");
                if seen.contains(&key) {
                    let p = list_path
                        .index(ci)
                        .child("ports")
                        .index(pi)
                        .child("hostPort");
                    errs.push(FieldError::duplicate(&p, key));
                } else {
                    seen.push(key);
                }
            }
        }
    }
}
