//! Audit logging as upstream's log backend: an `audit.k8s.io/v1 Policy` picks each request's
//! level (None, Metadata, Request, RequestResponse) and the events are appended as JSON lines
//! to `--audit-log-path`, one per stage (RequestReceived, ResponseStarted for long-running
//! requests, ResponseComplete).

use std::{
    io::Write,
    path::Path,
    sync::{Arc, Mutex},
};

use serde::Deserialize;
use serde_json::{json, Value};

use super::{authorizer::Attributes, options::AuthOptions, AuthError};

/// How much of a request is recorded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
pub enum Level {
    #[default]
    None,
    Metadata,
    Request,
    RequestResponse,
}

impl Level {
    fn as_str(self) -> &'static str {
        match self {
            Level::None => "None",
            Level::Metadata => "Metadata",
            Level::Request => "Request",
            Level::RequestResponse => "RequestResponse",
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct GroupResources {
    group: String,
    resources: Vec<String>,
    resource_names: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct PolicyRule {
    level: Level,
    users: Vec<String>,
    user_groups: Vec<String>,
    verbs: Vec<String>,
    resources: Vec<GroupResources>,
    namespaces: Vec<String>,
    #[serde(rename = "nonResourceURLs")]
    non_resource_urls: Vec<String>,
    omit_stages: Option<Vec<String>>,
}

/// An audit policy.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Policy {
    rules: Vec<PolicyRule>,
    omit_stages: Vec<String>,
}

impl PolicyRule {
    fn matches(&self, a: &Attributes) -> bool {
        if !self.users.is_empty() && !self.users.contains(&a.user.name) {
            return false;
        }
        if !self.user_groups.is_empty()
            && !a.user.groups.iter().any(|g| self.user_groups.contains(g))
        {
            return false;
        }
        if !self.verbs.is_empty() && !self.verbs.contains(&a.verb) {
            return false;
        }
        let resource_rule = !self.resources.is_empty() || !self.namespaces.is_empty();
        if !resource_rule && self.non_resource_urls.is_empty() {
            return true;
        }
        if !a.resource_request {
            return self.non_resource_urls.iter().any(|u| {
                u == "*"
                    || *u == a.path
                    || u.strip_suffix('*').is_some_and(|p| a.path.starts_with(p))
            });
        }
        if !resource_rule {
            return false;
        }
        if !self.namespaces.is_empty() && !self.namespaces.contains(&a.namespace) {
            return false;
        }
        if self.resources.is_empty() {
            return true;
        }
        let combined = if a.subresource.is_empty() {
            a.resource.clone()
        } else {
            format!("{}/{}", a.resource, a.subresource)
        };
        self.resources.iter().any(|gr| {
            gr.group == a.api_group
                && (gr.resources.is_empty()
                    || gr.resources.iter().any(|r| {
                        *r == "*"
                            || *r == combined
                            || *r == format!("{}/*", a.resource)
                            || (!a.subresource.is_empty() && *r == format!("*/{}", a.subresource))
                    }))
                && (gr.resource_names.is_empty() || gr.resource_names.contains(&a.name))
        })
    }
}

impl Policy {
    pub fn parse(text: &str) -> Result<Policy, String> {
        let v: Value = serde_saphyr::from_str(text).map_err(|e| e.to_string())?;
        if v["kind"].as_str().is_some_and(|k| k != "Policy") {
            return Err(format!("kind {} is not Policy", v["kind"]));
        }
        serde_json::from_value(v).map_err(|e| e.to_string())
    }

    /// The level of a request and the stages not to record.
    pub fn level(&self, a: &Attributes) -> (Level, Vec<String>) {
        match self.rules.iter().find(|r| r.matches(a)) {
            Some(r) => {
                let mut omit = self.omit_stages.clone();
                omit.extend(r.omit_stages.clone().unwrap_or_default());
                (r.level, omit)
            }
            None => (Level::None, Vec::new()),
        }
    }
}

/// The audit backend: a policy and where events go.
pub struct Audit {
    policy: Policy,
    sink: Mutex<Box<dyn Write + Send>>,
}

impl Audit {
    /// `None` unless both a log path and a policy are given (upstream audits nothing
    /// without a policy).
    pub fn new(opts: &AuthOptions) -> Result<Option<Audit>, AuthError> {
        let (Some(path), Some(policy_path)) = (&opts.audit_log_path, &opts.audit_policy_file)
        else {
            if opts.audit_log_path.is_some() {
                tracing::warn!("--audit-log-path without --audit-policy-file: auditing is off");
            }
            return Ok(None);
        };
        let text = std::fs::read_to_string(policy_path).map_err(|source| AuthError::Read {
            path: policy_path.clone(),
            source,
        })?;
        let policy = Policy::parse(&text).map_err(|why| AuthError::Invalid {
            path: policy_path.clone(),
            why,
        })?;
        let sink: Box<dyn Write + Send> = if path == Path::new("-") {
            Box::new(std::io::stdout())
        } else {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|source| AuthError::Read {
                    path: dir.to_path_buf(),
                    source,
                })?;
            }
            Box::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|source| AuthError::Read {
                        path: path.clone(),
                        source,
                    })?,
            )
        };
        Ok(Some(Audit {
            policy,
            sink: Mutex::new(sink),
        }))
    }

    fn write(&self, event: &Value) {
        let mut line = event.to_string();
        line.push('\n');
        let mut sink = match self.sink.lock() {
            Ok(s) => s,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Err(err) = sink.write_all(line.as_bytes()).and_then(|()| sink.flush()) {
            tracing::warn!(%err, "writing an audit event");
        }
    }
}

fn timestamp() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// The audit record of one request, written stage by stage.
pub struct Record {
    audit: Arc<Audit>,
    pub level: Level,
    omit: Vec<String>,
    event: Value,
}

/// What the record needs to know about the request.
pub struct RequestMeta<'a> {
    pub audit_id: &'a str,
    pub uri: &'a str,
    pub source_ip: Option<String>,
    pub user_agent: Option<&'a str>,
    /// The authenticated user when `attrs.user` is an impersonated one.
    pub impersonator: Option<&'a super::user::UserInfo>,
}

impl Record {
    /// `None` when the policy says not to audit the request.
    pub fn start(audit: &Arc<Audit>, attrs: &Attributes, meta: RequestMeta<'_>) -> Option<Record> {
        let (level, omit) = audit.policy.level(attrs);
        if level == Level::None {
            return None;
        }
        let mut event = json!({
            "kind": "Event",
            "apiVersion": "audit.k8s.io/v1",
            "level": level.as_str(),
            "auditID": meta.audit_id,
            "requestURI": meta.uri,
            "verb": attrs.verb,
            "sourceIPs": meta.source_ip.into_iter().collect::<Vec<_>>(),
            "requestReceivedTimestamp": timestamp(),
        });
        match meta.impersonator {
            Some(real) => {
                event["user"] = real.to_json();
                event["impersonatedUser"] = attrs.user.to_json();
            }
            None => event["user"] = attrs.user.to_json(),
        }
        if let Some(ua) = meta.user_agent {
            event["userAgent"] = json!(ua);
        }
        if attrs.resource_request {
            let mut r = json!({ "resource": attrs.resource, "apiVersion": attrs.api_version });
            for (k, v) in [
                ("namespace", &attrs.namespace),
                ("name", &attrs.name),
                ("apiGroup", &attrs.api_group),
                ("subresource", &attrs.subresource),
            ] {
                if !v.is_empty() {
                    r[k] = json!(v);
                }
            }
            event["objectRef"] = r;
        }
        let record = Record {
            audit: audit.clone(),
            level,
            omit,
            event,
        };
        record.emit("RequestReceived");
        Some(record)
    }

    fn emit(&self, stage: &str) {
        if self.omit.iter().any(|s| s == stage) {
            return;
        }
        let mut e = self.event.clone();
        e["stage"] = json!(stage);
        e["stageTimestamp"] = json!(timestamp());
        self.audit.write(&e);
    }

    pub fn annotate(&mut self, key: &str, value: &str) {
        self.event["annotations"][key] = json!(value);
    }

    /// Records the request body (JSON, YAML or protobuf, recorded as JSON).
    pub fn request_object(&mut self, content_type: &str, body: &[u8]) {
        if self.level >= Level::Request {
            if let Ok(v) = super::reviews::decode(content_type, body, "request") {
                self.event["requestObject"] = v;
            }
        }
    }

    pub fn response_object(&mut self, body: &[u8]) {
        if self.level >= Level::RequestResponse {
            if let Ok(v) = serde_json::from_slice::<Value>(body) {
                self.event["responseObject"] = v;
            }
        }
    }

    /// Records the response code (and the Status of a failure).
    pub fn response_status(&mut self, code: u16, status: Option<&Value>) {
        let mut s = json!({ "metadata": {}, "code": code });
        if let Some(st) = status {
            for k in ["status", "message", "reason"] {
                if let Some(v) = st.get(k) {
                    s[k] = v.clone();
                }
            }
        }
        self.event["responseStatus"] = s;
    }

    /// Long-running responses: the headers are out, the body streams on.
    pub fn response_started(&self) {
        self.emit("ResponseStarted");
    }

    pub fn complete(self) {
        self.emit("ResponseComplete");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::user::UserInfo;

    #[test]
    fn first_matching_rule_decides() {
        let p = Policy::parse(
            r#"
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: None
  users: ["system:kube-proxy"]
- level: RequestResponse
  resources:
  - group: ""
    resources: ["secrets"]
- level: None
  nonResourceURLs: ["/healthz*"]
- level: Metadata
"#,
        )
        .unwrap();
        let attrs = |user: &str, resource: &str, path: &str| Attributes {
            user: UserInfo {
                name: user.into(),
                ..Default::default()
            },
            verb: "get".into(),
            resource_request: !resource.is_empty(),
            resource: resource.into(),
            path: path.into(),
            ..Default::default()
        };
        assert_eq!(
            p.level(&attrs("system:kube-proxy", "pods", "")).0,
            Level::None
        );
        let (level, omit) = p.level(&attrs("alice", "secrets", ""));
        assert_eq!(
            (level, omit),
            (Level::RequestResponse, vec!["RequestReceived".to_string()])
        );
        assert_eq!(p.level(&attrs("alice", "pods", "")).0, Level::Metadata);
        assert_eq!(p.level(&attrs("alice", "", "/healthz")).0, Level::None);
        assert_eq!(p.level(&attrs("alice", "", "/api")).0, Level::Metadata);
        assert!(Policy::parse("kind: Other").is_err());
    }
}
