//! The `batch` group: Jobs and CronJobs.

use super::access::{self, Errors};
use super::cron::parse_standard;
use super::field_error::FieldError;
use super::metadata::{immutable, validate_object_meta, validate_object_meta_update, MetaRules};
use super::names::NameRule;
use super::path::Path;
use super::pod_spec::validate_pod_template_spec;
use super::selector::validate_label_selector;
use super::workload::{
    check_selector_matches, non_negative, selector_of, spec_of, template_spec_field,
};
use serde_json::Value;

const RULES: MetaRules = MetaRules {
    namespaced: true,
    name: NameRule::Dns1123Subdomain,
    kube_finalizers: true,
};

/// Longest CronJob name: Job names get an 11-character `-<timestamp>` suffix and must stay labels.
const CRON_JOB_NAME_MAX: usize = 52;
const MAX_PARALLELISM_FOR_INDEXED_JOB: i64 = 100_000;

/// Upstream `validateJobSpec`: counts, completion mode, and a template with an OnFailure/Never
/// restart policy.
fn validate_job_spec_common(spec: &Value, path: &Path, errs: &mut Errors) {
    for key in [
        "parallelism",
        "completions",
        "activeDeadlineSeconds",
        "backoffLimit",
        "ttlSecondsAfterFinished",
    ] {
        non_negative(spec, key, path, errs);
    }
    if let Some(mode) = access::string(spec, "completionMode", path, errs) {
        match mode {
            "NonIndexed" => {}
            "Indexed" => {
                if access::get(spec, "completions").is_none() {
                    errs.push(FieldError::required(
                        &path.child("completions"),
                        "when completion mode is Indexed",
                    ));
                }
                if let Some(p) = access::get(spec, "parallelism").and_then(Value::as_i64) {
                    if p > MAX_PARALLELISM_FOR_INDEXED_JOB {
                        errs.push(FieldError::invalid(
                            &path.child("parallelism"),
                            p,
                            "must be less than or equal to 100000 when completion mode is Indexed",
                        ));
                    }
                }
            }
            other => errs.push(FieldError::not_supported(
                &path.child("completionMode"),
                other,
                &["NonIndexed", "Indexed"],
            )),
        }
    }
    let tpath = path.child("template");
    let template = access::object(spec, "template", path, errs).unwrap_or(&Value::Null);
    validate_pod_template_spec(template, &tpath, errs);
    let restart_path = tpath.child("spec").child("restartPolicy");
    let restart = template_spec_field(template, "restartPolicy")
        .and_then(Value::as_str)
        .unwrap_or("");
    match restart {
        "Always" | "" => errs.push(FieldError::required(
            &restart_path,
            "valid values: \"OnFailure\", \"Never\"",
        )),
        "OnFailure" | "Never" => {
            if restart != "Never" && access::get(spec, "podFailurePolicy").is_some() {
                errs.push(FieldError::invalid(
                    &restart_path,
                    restart,
                    "only \"Never\" is supported when podFailurePolicy is specified",
                ));
            }
        }
        other => errs.push(FieldError::not_supported(
            &restart_path,
            other,
            &["OnFailure", "Never"],
        )),
    }
}

/// Upstream `ValidateJobSpec`: the common checks plus a selector that selects the template.
fn validate_job_spec(spec: &Value, path: &Path, errs: &mut Errors) {
    validate_job_spec_common(spec, path, errs);
    match access::object(spec, "selector", path, errs) {
        None => errs.push(FieldError::required(&path.child("selector"), "")),
        Some(sel) => validate_label_selector(sel, &path.child("selector"), errs),
    }
    if let Some(sel) = selector_of(spec) {
        let template = access::get(spec, "template").unwrap_or(&Value::Null);
        check_selector_matches(&sel, template, &path.child("template"), errs);
    }
}

fn job(obj: &Value, errs: &mut Errors) {
    validate_object_meta(obj, RULES, errs);
    validate_job_spec(spec_of(obj), &Path::new("spec"), errs);
}

fn validate_schedule(spec: &Value, old_schedule: Option<&str>, path: &Path, errs: &mut Errors) {
    let spath = path.child("schedule");
    let schedule = access::str_or_empty(spec, "schedule", path, errs);
    if schedule.is_empty() {
        errs.push(FieldError::required(&spath, ""));
        return;
    }
    if let Err(msg) = parse_standard(schedule) {
        errs.push(FieldError::invalid(&spath, schedule, &msg));
    }
    let allow_tz = old_schedule.is_some_and(|s| s.contains("TZ"));
    if schedule.contains("TZ") {
        if !allow_tz {
            errs.push(FieldError::invalid(
                &spath,
                schedule,
                "cannot use TZ or CRON_TZ in schedule, use timeZone field instead",
            ));
        } else if access::get(spec, "timeZone").is_some() {
            errs.push(FieldError::invalid(
                &spath,
                schedule,
                "cannot use both timeZone field and TZ or CRON_TZ in schedule",
            ));
        }
    }
}

fn validate_time_zone(spec: &Value, path: &Path, errs: &mut Errors) {
    let Some(tz) = access::string(spec, "timeZone", path, errs) else {
        return;
    };
    let tz_path = path.child("timeZone");
    if tz.is_empty() {
        errs.push(FieldError::invalid(&tz_path, tz, "unknown time zone "));
        return;
    }
    if tz.eq_ignore_ascii_case("local") {
        errs.push(FieldError::invalid(
            &tz_path,
            tz,
            "timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones",
        ));
        return;
    }
    let well_formed = tz.split('/').all(|part| {
        !part.is_empty()
            && part != ".."
            && part
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || b"-_+".contains(&c))
    });
    if !well_formed {
        errs.push(FieldError::invalid(
            &tz_path,
            tz,
            &format!("unknown time zone {tz}"),
        ));
    }
}

fn validate_cron_job_spec(spec: &Value, old: Option<&Value>, path: &Path, errs: &mut Errors) {
    let old_schedule = old
        .and_then(|o| access::get(o, "schedule"))
        .and_then(Value::as_str);
    validate_schedule(spec, old_schedule, path, errs);
    non_negative(spec, "startingDeadlineSeconds", path, errs);
    let tz_changed = old
        .is_none_or(|o| !access::same(access::get(o, "timeZone"), access::get(spec, "timeZone")));
    if tz_changed {
        validate_time_zone(spec, path, errs);
    }
    let policy = access::str_or_empty(spec, "concurrencyPolicy", path, errs);
    let valid = ["Allow", "Forbid", "Replace"];
    if policy.is_empty() {
        errs.push(FieldError::required(&path.child("concurrencyPolicy"), ""));
    } else if !valid.contains(&policy) {
        errs.push(FieldError::not_supported(
            &path.child("concurrencyPolicy"),
            policy,
            &valid,
        ));
    }
    let jt_path = path.child("jobTemplate");
    let jt = access::object(spec, "jobTemplate", path, errs).unwrap_or(&Value::Null);
    let jspec_path = jt_path.child("spec");
    let jspec = access::object(jt, "spec", &jt_path, errs).unwrap_or(&Value::Null);
    validate_job_spec_common(jspec, &jspec_path, errs);
    if let Some(sel) = access::get(jspec, "selector") {
        errs.push(FieldError::invalid(
            &jspec_path.child("selector"),
            sel.clone(),
            "`selector` will be auto-generated",
        ));
    }
    if access::get(jspec, "manualSelector").and_then(Value::as_bool) == Some(true) {
        errs.push(FieldError::not_supported(
            &jspec_path.child("manualSelector"),
            true,
            &["nil", "false"],
        ));
    }
    non_negative(spec, "successfulJobsHistoryLimit", path, errs);
    non_negative(spec, "failedJobsHistoryLimit", path, errs);
}

fn cron_job(obj: &Value, errs: &mut Errors) {
    validate_object_meta(obj, RULES, errs);
    validate_cron_job_spec(spec_of(obj), None, &Path::new("spec"), errs);
    let name = access::get(obj, "metadata")
        .and_then(|m| access::get(m, "name"))
        .and_then(Value::as_str)
        .unwrap_or("");
    if name.len() > CRON_JOB_NAME_MAX {
        errs.push(FieldError::invalid(
            &Path::new("metadata").child("name"),
            name,
            "must be no more than 52 characters",
        ));
    }
}

/// Whether this module validates `kind`.
pub fn handles(kind: &str) -> bool {
    matches!(kind, "Job" | "CronJob")
}

pub fn create(kind: &str, obj: &Value, errs: &mut Errors) {
    match kind {
        "Job" => job(obj, errs),
        "CronJob" => cron_job(obj, errs),
        _ => {}
    }
}

/// Job template fields a suspended Job that never started may still change.
const JOB_SCHEDULING_DIRECTIVES: &[&str] =
    &["nodeSelector", "affinity", "tolerations", "schedulingGates"];

fn job_template_without_directives(template: Option<&Value>) -> Option<Value> {
    let mut t = template.cloned()?;
    if let Some(spec) = t.get_mut("spec").and_then(Value::as_object_mut) {
        for key in JOB_SCHEDULING_DIRECTIVES {
            spec.remove(*key);
        }
    }
    if let Some(meta) = t.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("labels");
        meta.remove("annotations");
    }
    Some(t)
}

pub fn update(kind: &str, new: &Value, old: &Value, errs: &mut Errors) {
    let spec_path = Path::new("spec");
    let (ns, os) = (spec_of(new), spec_of(old));
    match kind {
        "Job" => {
            validate_object_meta_update(new, old, true, errs);
            validate_job_spec(ns, &spec_path, errs);
            immutable(
                access::get(ns, "selector"),
                access::get(os, "selector"),
                &spec_path.child("selector"),
                errs,
            );
            let suspended_unstarted = access::get(ns, "suspend").and_then(Value::as_bool)
                == Some(true)
                && access::get(old, "status")
                    .and_then(|s| access::get(s, "startTime"))
                    .is_none();
            let (nt, ot) = (access::get(ns, "template"), access::get(os, "template"));
            if suspended_unstarted {
                if job_template_without_directives(nt) != job_template_without_directives(ot) {
                    errs.push(FieldError::invalid(
                        &spec_path.child("template"),
                        nt.cloned().unwrap_or(Value::Null),
                        "field is immutable",
                    ));
                }
            } else {
                immutable(nt, ot, &spec_path.child("template"), errs);
            }
            immutable(
                access::get(ns, "completionMode"),
                access::get(os, "completionMode"),
                &spec_path.child("completionMode"),
                errs,
            );
            let indexed =
                access::get(ns, "completionMode").and_then(Value::as_str) == Some("Indexed");
            if !indexed {
                immutable(
                    access::get(ns, "completions"),
                    access::get(os, "completions"),
                    &spec_path.child("completions"),
                    errs,
                );
            }
        }
        "CronJob" => {
            validate_object_meta_update(new, old, true, errs);
            validate_cron_job_spec(ns, Some(os), &spec_path, errs);
        }
        _ => {}
    }
}
