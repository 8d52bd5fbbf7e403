//! Ingresses (`networking.k8s.io/v1`): the HTTP paths of each rule, as upstream's
//! `validateHTTPIngressPath` checks them (path type and absolute paths).

use super::access::{self, Errors};
use super::field_error::FieldError;
use super::path::Path;
use serde_json::Value;

const PATH_TYPES: &[&str] = &["Exact", "ImplementationSpecific", "Prefix"];

pub fn validate_ingress(obj: &Value, errs: &mut Errors) {
    let path = Path::new("spec");
    let spec = access::get(obj, "spec").unwrap_or(&Value::Null);
    let rules_path = path.child("rules");
    for (i, rule) in access::array(spec, "rules", &path, errs).iter().enumerate() {
        let rule_path = rules_path.index(i);
        let Some(http) = access::object(rule, "http", &rule_path, errs) else {
            continue;
        };
        let http_path = rule_path.child("http");
        let paths_path = http_path.child("paths");
        for (j, p) in access::array(http, "paths", &http_path, errs)
            .iter()
            .enumerate()
        {
            let p_path = paths_path.index(j);
            let path_type = access::string(p, "pathType", &p_path, errs);
            match path_type {
                None => errs.push(FieldError::required(
                    &p_path.child("pathType"),
                    "pathType must be specified",
                )),
                Some(t) if !PATH_TYPES.contains(&t) => errs.push(FieldError::not_supported(
                    &p_path.child("pathType"),
                    t,
                    PATH_TYPES,
                )),
                Some(_) => {}
            }
            let text = access::str_or_empty(p, "path", &p_path, errs);
            let absolute_required = matches!(path_type, Some("Exact" | "Prefix"))
                || (path_type == Some("ImplementationSpecific") && !text.is_empty());
            if absolute_required && !text.starts_with('/') {
                errs.push(FieldError::invalid(
                    &p_path.child("path"),
                    text,
                    "must be an absolute path",
                ));
            }
        }
    }
}
