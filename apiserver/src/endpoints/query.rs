//! Query parameters of API requests.

use apimachinery::{
    fieldvalidation::FieldValidation,
    selector::{FieldSelector, LabelSelector},
};

use crate::{
    errors::{ApiError, ApiResult},
    registry::{
        store::{DeleteOptions, ListOptions, WriteOptions},
        ResourceDef,
    },
};

/// The decoded query string.
#[derive(Debug, Default, Clone)]
pub struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    pub fn parse(raw: Option<&str>) -> Query {
        Query {
            pairs: url::form_urlencoded::parse(raw.unwrap_or("").as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        }
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn flag(&self, key: &str) -> bool {
        matches!(self.get(key), Some("true") | Some("1") | Some(""))
    }

    fn int(&self, key: &str) -> ApiResult<Option<i64>> {
        match self.get(key) {
            None | Some("") => Ok(None),
            Some(v) => v
                .parse()
                .map(Some)
                .map_err(|_| ApiError::bad_request(format!("invalid value for {key}: {v:?}"))),
        }
    }

    /// `dryRun=All` (the only value upstream accepts).
    pub fn dry_run(&self) -> ApiResult<bool> {
        match self.get("dryRun") {
            None | Some("") => Ok(false),
            Some("All") => Ok(true),
            Some(other) => Err(ApiError::bad_request(format!(
                "Invalid dry run value: {other:?}: supported values: \"All\""
            ))),
        }
    }

    pub fn write_options(&self) -> ApiResult<WriteOptions> {
        Ok(WriteOptions {
            dry_run: self.dry_run()?,
            field_validation: FieldValidation::from_query(self.get("fieldValidation"))
                .map_err(|e| ApiError::bad_request(e.to_string()))?,
        })
    }

    /// List options, with selectors checked against what the resource supports.
    pub fn list_options(&self, def: &ResourceDef) -> ApiResult<ListOptions> {
        let labels = LabelSelector::parse(self.get("labelSelector").unwrap_or(""))
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        let fields = FieldSelector::parse(self.get("fieldSelector").unwrap_or(""))
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        for term in &fields.terms {
            if !def.supports_field(&term.field) {
                return Err(ApiError::bad_request(format!(
                    "field label not supported: {}",
                    term.field
                )));
            }
        }
        let exact = match self.get("resourceVersionMatch") {
            None | Some("") | Some("NotOlderThan") => false,
            Some("Exact") => true,
            Some(other) => {
                return Err(ApiError::bad_request(format!(
                    "invalid resourceVersionMatch {other:?}: supported values: \"Exact\", \"NotOlderThan\""
                )))
            }
        };
        let resource_version = self
            .get("resourceVersion")
            .filter(|v| !v.is_empty())
            .map(str::to_string);
        if exact && resource_version.as_deref().is_none_or(|v| v == "0") {
            return Err(ApiError::bad_request(
                "resourceVersionMatch \"Exact\" requires a non-zero resourceVersion",
            ));
        }
        Ok(ListOptions {
            labels,
            fields,
            resource_version,
            exact,
            limit: self.int("limit")?.unwrap_or(0),
            continue_token: self
                .get("continue")
                .filter(|c| !c.is_empty())
                .map(str::to_string),
        })
    }

    /// Delete options from the query; a body, when present, is merged by the caller.
    pub fn delete_options(&self) -> ApiResult<DeleteOptions> {
        Ok(DeleteOptions {
            grace_period_seconds: self.int("gracePeriodSeconds")?,
            precondition_uid: None,
            precondition_rv: None,
            propagation_policy: self.get("propagationPolicy").map(str::to_string),
            dry_run: self.dry_run()?,
        })
    }
}

/// Merges a `DeleteOptions` body into options from the query.
pub fn merge_delete_body(opts: &mut DeleteOptions, body: &serde_json::Value) {
    if let Some(g) = body.get("gracePeriodSeconds").and_then(|v| v.as_i64()) {
        opts.grace_period_seconds = Some(g);
    }
    if let Some(p) = body.get("propagationPolicy").and_then(|v| v.as_str()) {
        opts.propagation_policy = Some(p.to_string());
    }
    if body.get("orphanDependents").and_then(|v| v.as_bool()) == Some(true) {
        opts.propagation_policy = Some("Orphan".into());
    }
    if let Some(uid) = body.pointer("/preconditions/uid").and_then(|v| v.as_str()) {
        opts.precondition_uid = Some(uid.to_string());
    }
    if let Some(rv) = body
        .pointer("/preconditions/resourceVersion")
        .and_then(|v| v.as_str())
    {
        opts.precondition_rv = Some(rv.to_string());
    }
    if body
        .get("dryRun")
        .and_then(|v| v.as_array())
        .is_some_and(|a| a.iter().any(|x| x == "All"))
    {
        opts.dry_run = true;
    }
}
