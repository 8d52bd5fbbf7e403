//! ServiceAccount: pods run as `default` unless they name another service account.

use serde_json::{json, Value};

use super::{new_pod_spec, Attributes, Plugin};
use crate::{errors::ApiResult, server::ApiServer};

pub struct ServiceAccount;

impl Plugin for ServiceAccount {
    fn name(&self) -> &'static str {
        "ServiceAccount"
    }

    fn mutate(
        &self,
        _: &ApiServer,
        attrs: &Attributes<'_>,
        obj: &mut Value,
        _: Option<&Value>,
    ) -> ApiResult<()> {
        let Some(spec) = new_pod_spec(attrs, obj) else {
            return Ok(());
        };
        let named = spec
            .get("serviceAccountName")
            .and_then(Value::as_str)
            .is_some_and(|s| !s.is_empty());
        if !named {
            spec.insert("serviceAccountName".into(), json!("default"));
        }
        let name = spec.get("serviceAccountName").cloned().unwrap_or_default();
        spec.insert("serviceAccount".into(), name);
        Ok(())
    }
}
