//! Probes and lifecycle hooks: each needs exactly one handler, and their timings must be sane.

use super::access::{self, Errors};
use super::field_error::FieldError;
use super::names::{is_valid_port_name, is_valid_port_num};
use super::path::Path;
use serde_json::Value;

/// Which kind of probe, since liveness/startup and readiness differ slightly.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum ProbeKind {
    Liveness,
    Readiness,
    Startup,
}

/// Upstream `ValidatePortNumOrName` for an IntOrString port.
pub fn validate_port_num_or_name(port: Option<&Value>, path: &Path, errs: &mut Errors) {
    match port {
        Some(Value::Number(n)) => {
            let v = n.as_i64().unwrap_or(0);
            for msg in is_valid_port_num(v) {
                errs.push(FieldError::invalid(path, v, &msg));
            }
        }
        Some(Value::String(s)) => {
            for msg in is_valid_port_name(s) {
                errs.push(FieldError::invalid(path, s.as_str(), &msg));
            }
        }
        // An absent IntOrString is the integer 0.
        None | Some(Value::Null) => {
            for msg in is_valid_port_num(0) {
                errs.push(FieldError::invalid(path, 0, &msg));
            }
        }
        Some(other) => errs.push(FieldError::invalid(
            path,
            other.clone(),
            "must be an integer or a string",
        )),
    }
}

fn validate_http_get(h: &Value, path: &Path, errs: &mut Errors) {
    if access::str_or_empty(h, "path", path, errs).is_empty() {
        errs.push(FieldError::required(&path.child("path"), ""));
    }
    validate_port_num_or_name(access::get(h, "port"), &path.child("port"), errs);
    let scheme = access::str_or_empty(h, "scheme", path, errs);
    if scheme != "HTTP" && scheme != "HTTPS" {
        errs.push(FieldError::not_supported(
            &path.child("scheme"),
            scheme,
            &["HTTP", "HTTPS"],
        ));
    }
    let headers_path = path.child("httpHeaders");
    for (i, header) in access::array(h, "httpHeaders", path, errs)
        .iter()
        .enumerate()
    {
        let name = access::str_or_empty(header, "name", &headers_path.index(i), errs);
        let token = !name.is_empty()
            && name
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c));
        if !token {
            errs.push(FieldError::invalid(
                &headers_path.index(i).child("name"),
                name,
                "a valid HTTP header must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character",
            ));
        }
    }
}

/// Upstream `validateHandler`: exactly one of the handler types the holder supports.
pub fn validate_handler(holder: &Value, kinds: &[&str], path: &Path, errs: &mut Errors) {
    let mut count = 0;
    for kind in kinds {
        let Some(h) = access::get(holder, kind) else {
            continue;
        };
        let p = path.child(kind);
        if count > 0 {
            errs.push(FieldError::forbidden(
                &p,
                "may not specify more than 1 handler type",
            ));
            continue;
        }
        count += 1;
        match *kind {
            "exec" => {
                let command = access::string_list(h, "command", &p, errs);
                if command.is_empty() {
                    errs.push(FieldError::required(&p.child("command"), ""));
                }
            }
            "httpGet" => validate_http_get(h, &p, errs),
            "tcpSocket" => {
                validate_port_num_or_name(access::get(h, "port"), &p.child("port"), errs)
            }
            "grpc" => {
                let port = access::integer(h, "port", &p, errs).unwrap_or(0);
                for msg in is_valid_port_num(port) {
                    errs.push(FieldError::invalid(&p.child("port"), port, &msg));
                }
            }
            "sleep" => {
                let secs = access::integer(h, "seconds", &p, errs).unwrap_or(0);
                if secs <= 0 {
                    errs.push(FieldError::invalid(
                        &p.child("seconds"),
                        secs,
                        "must be greater than 0",
                    ));
                }
            }
            _ => {}
        }
    }
    if count == 0 {
        errs.push(FieldError::required(path, "must specify a handler type"));
    }
}

/// Upstream `validateProbe` plus the per-kind rules.
pub fn validate_probe(probe: &Value, kind: ProbeKind, path: &Path, errs: &mut Errors) {
    validate_handler(probe, &["exec", "httpGet", "tcpSocket", "grpc"], path, errs);
    for field in [
        "initialDelaySeconds",
        "timeoutSeconds",
        "periodSeconds",
        "successThreshold",
        "failureThreshold",
    ] {
        if let Some(v) = access::integer(probe, field, path, errs) {
            if v < 0 {
                errs.push(FieldError::invalid(
                    &path.child(field),
                    v,
                    "must be greater than or equal to 0",
                ));
            }
        }
    }
    let grace = access::integer(probe, "terminationGracePeriodSeconds", path, errs);
    if let Some(g) = grace {
        if g <= 0 {
            errs.push(FieldError::invalid(
                &path.child("terminationGracePeriodSeconds"),
                g,
                "must be greater than 0",
            ));
        }
    }
    match kind {
        ProbeKind::Readiness => {
            if let Some(g) = grace {
                errs.push(FieldError::invalid(
                    &path.child("terminationGracePeriodSeconds"),
                    g,
                    "must not be set for readinessProbes",
                ));
            }
        }
        ProbeKind::Liveness | ProbeKind::Startup => {
            let success = access::get(probe, "successThreshold").and_then(Value::as_i64);
            if let Some(s) = success.filter(|s| *s != 1) {
                errs.push(FieldError::invalid(
                    &path.child("successThreshold"),
                    s,
                    "must be 1",
                ));
            }
        }
    }
}

/// Upstream `validateLifecycle`: postStart and preStop handlers.
pub fn validate_lifecycle(lifecycle: &Value, path: &Path, errs: &mut Errors) {
    for hook in ["postStart", "preStop"] {
        if let Some(h) = access::object(lifecycle, hook, path, errs) {
            validate_handler(
                h,
                &["exec", "httpGet", "tcpSocket", "sleep"],
                &path.child(hook),
                errs,
            );
        }
    }
}
