//! `metadata` of every object: names, scope, labels, annotations, owner references and
//! finalizers on create, and the fields an update may never change.

use super::access::{self, Errors};
use super::field_error::FieldError;
use super::labels::{validate_annotations, validate_labels};
use super::names::{is_dns1123_label, is_qualified_name, NameRule};
use super::path::Path;
use serde_json::Value;

const IMMUTABLE: &str = "field is immutable";
const ORPHAN: &str = "orphan";
const FOREGROUND: &str = "foregroundDeletion";

/// How one kind's metadata is checked.
#[derive(Clone, Copy, Debug)]
pub struct MetaRules {
    pub namespaced: bool,
    pub name: NameRule,
    /// Built-in types also refuse unqualified finalizers other than the standard ones.
    pub kube_finalizers: bool,
}

fn meta_of(obj: &Value) -> &Value {
    access::get(obj, "metadata").unwrap_or(&Value::Null)
}

/// Upstream `ValidateObjectMeta` (core flavour when `kube_finalizers`), on create.
pub fn validate_object_meta(obj: &Value, rules: MetaRules, errs: &mut Errors) {
    let path = Path::new("metadata");
    let Some(meta) = access::object(obj, "metadata", &Path::default(), errs) else {
        errs.push(FieldError::required(
            &path.child("name"),
            "name or generateName is required",
        ));
        return;
    };
    let generate_name = access::str_or_empty(meta, "generateName", &path, errs);
    if !generate_name.is_empty() {
        for msg in rules.name.check(generate_name, true) {
            errs.push(FieldError::invalid(
                &path.child("generateName"),
                generate_name,
                &msg,
            ));
        }
    }
    let name = access::str_or_empty(meta, "name", &path, errs);
    if name.is_empty() {
        errs.push(FieldError::required(
            &path.child("name"),
            "name or generateName is required",
        ));
    } else {
        for msg in rules.name.check(name, false) {
            errs.push(FieldError::invalid(&path.child("name"), name, &msg));
        }
    }
    let namespace = access::str_or_empty(meta, "namespace", &path, errs);
    if rules.namespaced {
        if namespace.is_empty() {
            errs.push(FieldError::required(&path.child("namespace"), ""));
        } else {
            for msg in is_dns1123_label(namespace) {
                errs.push(FieldError::invalid(
                    &path.child("namespace"),
                    namespace,
                    &msg,
                ));
            }
        }
    } else if !namespace.is_empty() {
        errs.push(FieldError::forbidden(
            &path.child("namespace"),
            "not allowed on this type",
        ));
    }
    validate_common(meta, &path, rules.kube_finalizers, errs);
}

/// The checks shared by create and update.
fn validate_common(meta: &Value, path: &Path, kube_finalizers: bool, errs: &mut Errors) {
    if let Some(generation) = access::integer(meta, "generation", path, errs) {
        if generation < 0 {
            errs.push(FieldError::invalid(
                &path.child("generation"),
                generation,
                "must be greater than or equal to 0",
            ));
        }
    }
    validate_labels(meta, "labels", path, errs);
    validate_annotations(meta, "annotations", path, errs);
    validate_owner_references(meta, path, errs);
    validate_finalizers(meta, path, kube_finalizers, errs);
}

fn validate_owner_references(meta: &Value, path: &Path, errs: &mut Errors) {
    let refs_path = path.child("ownerReferences");
    let refs = access::array(meta, "ownerReferences", path, errs);
    let mut first_controller: Option<String> = None;
    for r in refs {
        let api_version = access::str_or_empty(r, "apiVersion", &refs_path, errs);
        let kind = access::str_or_empty(r, "kind", &refs_path, errs);
        let name = access::str_or_empty(r, "name", &refs_path, errs);
        let uid = access::str_or_empty(r, "uid", &refs_path, errs);
        let (group, version) = match api_version.split('/').collect::<Vec<_>>().as_slice() {
            [v] => ("", *v),
            [g, v] => (*g, *v),
            _ => ("", ""),
        };
        if version.is_empty() {
            errs.push(FieldError::invalid(
                &refs_path.child("apiVersion"),
                api_version,
                "version must not be empty",
            ));
        }
        for (field, value) in [("kind", kind), ("name", name), ("uid", uid)] {
            if value.is_empty() {
                errs.push(FieldError::invalid(
                    &refs_path.child(field),
                    value,
                    "must not be empty",
                ));
            }
        }
        if group.is_empty() && version == "v1" && kind == "Event" {
            errs.push(FieldError::invalid(
                &refs_path,
                r.clone(),
                "/v1, Kind=Event is disallowed from being an owner",
            ));
        }
        if access::get(r, "controller").and_then(Value::as_bool) == Some(true) {
            let current = format!("{kind}/{name}");
            match &first_controller {
                Some(first) => errs.push(FieldError::invalid(
                    &refs_path,
                    Value::Array(refs.to_vec()),
                    &format!("Only one reference can have Controller set to true. Found \"true\" in references for {first} and {current}"),
                )),
                None => first_controller = Some(current),
            }
        }
    }
}

/// Finalizer names that built-in types accept without a domain prefix.
fn is_standard_finalizer(name: &str) -> bool {
    matches!(name, "kubernetes" | ORPHAN | FOREGROUND)
}

fn validate_finalizers(meta: &Value, path: &Path, kube_finalizers: bool, errs: &mut Errors) {
    let fin_path = path.child("finalizers");
    let finalizers = access::string_list(meta, "finalizers", path, errs);
    for f in &finalizers {
        for msg in is_qualified_name(f) {
            errs.push(FieldError::invalid(&fin_path, *f, &msg));
        }
    }
    if finalizers.contains(&ORPHAN) && finalizers.contains(&FOREGROUND) {
        let list: Vec<Value> = finalizers.iter().map(|f| Value::from(*f)).collect();
        errs.push(FieldError::invalid(
            &fin_path,
            list,
            "finalizer orphan and foregroundDeletion cannot be both set",
        ));
    }
    if kube_finalizers {
        for (i, f) in finalizers.iter().enumerate() {
            if !f.contains('/') && !is_standard_finalizer(f) {
                errs.push(FieldError::invalid(
                    &fin_path.index(i),
                    *f,
                    "name is neither a standard finalizer name nor is it fully qualified",
                ));
            }
        }
    }
}

/// Upstream `ValidateObjectMetaUpdate`. Like upstream, it expects the caller (the registry) to
/// have already carried over what a client may omit: resourceVersion for unconditional updates,
/// uid, creationTimestamp, deletionTimestamp and deletionGracePeriodSeconds.
pub fn validate_object_meta_update(
    new: &Value,
    old: &Value,
    kube_finalizers: bool,
    errs: &mut Errors,
) {
    let path = Path::new("metadata");
    let (nm, om) = (meta_of(new), meta_of(old));
    if access::get(om, "deletionTimestamp").is_some() {
        let mut scratch = Errors::new();
        let old_fin = access::string_list(om, "finalizers", &path, &mut scratch);
        let mut added: Vec<&str> = access::string_list(nm, "finalizers", &path, &mut scratch)
            .into_iter()
            .filter(|f| !old_fin.contains(f))
            .collect();
        added.sort();
        added.dedup();
        if !added.is_empty() {
            let quoted: Vec<String> = added
                .iter()
                .map(|f| super::field_error::go_quote(f))
                .collect();
            errs.push(FieldError::forbidden(
                &path.child("finalizers"),
                &format!(
                    "no new finalizers can be added if the object is being deleted, found new finalizers []string{{{}}}",
                    quoted.join(", ")
                ),
            ));
        }
    }
    let rv = access::str_or_empty(nm, "resourceVersion", &path, errs);
    if rv.is_empty() {
        errs.push(FieldError::invalid(
            &path.child("resourceVersion"),
            rv,
            "must be specified for an update",
        ));
    }
    let new_gen = access::integer(nm, "generation", &path, errs).unwrap_or(0);
    let old_gen = access::get(om, "generation")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    if new_gen < old_gen {
        errs.push(FieldError::invalid(
            &path.child("generation"),
            new_gen,
            "must not be decremented",
        ));
    }
    for field in [
        "name",
        "namespace",
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
    ] {
        let (n, o) = (access::get(nm, field), access::get(om, field));
        if !access::same(n, o) {
            let bad = n.cloned().unwrap_or_else(|| match field {
                "deletionTimestamp" | "deletionGracePeriodSeconds" => Value::Null,
                _ => Value::from(""),
            });
            errs.push(FieldError::invalid(&path.child(field), bad, IMMUTABLE));
        }
    }
    validate_labels(nm, "labels", &path, errs);
    validate_annotations(nm, "annotations", &path, errs);
    validate_owner_references(nm, &path, errs);
    validate_finalizers(nm, &path, kube_finalizers, errs);
}

/// Upstream `ValidateImmutableField`: `field is immutable` when the value changed.
pub fn immutable(new: Option<&Value>, old: Option<&Value>, path: &Path, errs: &mut Errors) {
    if !access::same(new, old) {
        errs.push(FieldError::invalid(
            path,
            new.cloned().unwrap_or(Value::Null),
            IMMUTABLE,
        ));
    }
}
