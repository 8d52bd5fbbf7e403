//! The generic store: every verb for every resource over etcd and the watch cache, with
//! upstream's create/update/delete semantics (generated names, uids, preconditions,
//! generation, status separation, finalizers, graceful deletion). Resource differences are
//! delegated to the resource's behaviour module.

use std::{sync::Arc, time::Duration};

use serde_json::{json, Value};

use super::{
    job,
    meta::{self, meta_mut},
    namespace, pod,
    resource::{Behaviour, ResourceDef, Subresource},
    service,
};
use crate::{
    admission::{Attributes, Operation},
    endpoints::continue_token,
    errors::{ApiError, ApiResult},
    server::ApiServer,
    storage::{object::set_resource_version, Object, StorageError},
};
use apimachinery::selector::{FieldSelector, LabelSelector};

pub use apimachinery::fieldvalidation::FieldValidation;

/// Options of a write.
#[derive(Debug, Clone)]
pub struct WriteOptions {
    pub dry_run: bool,
    pub field_validation: FieldValidation,
}

impl Default for WriteOptions {
    fn default() -> Self {
        WriteOptions {
            dry_run: false,
            field_validation: FieldValidation::Warn,
        }
    }
}

/// Options of a delete (`meta.k8s.io/v1 DeleteOptions`).
#[derive(Debug, Clone, Default)]
pub struct DeleteOptions {
    pub grace_period_seconds: Option<i64>,
    pub precondition_uid: Option<String>,
    pub precondition_rv: Option<String>,
    pub propagation_policy: Option<String>,
    pub dry_run: bool,
}

/// How a list must be read.
#[derive(Debug, Clone, Default)]
pub struct ListOptions {
    pub labels: LabelSelector,
    pub fields: FieldSelector,
    pub resource_version: Option<String>,
    pub exact: bool,
    pub limit: i64,
    pub continue_token: Option<String>,
}

/// A patch as the client sent it.
#[derive(Debug, Clone, Copy)]
pub struct PatchBody<'a> {
    pub patch_type: apimachinery::patch::PatchType,
    pub data: &'a [u8],
}

/// A page of a list.
pub struct ListResult {
    pub rv: i64,
    pub objects: Vec<Arc<Object>>,
    pub continue_token: Option<String>,
    pub remaining: Option<i64>,
}

/// What a delete did.
pub enum Deleted {
    /// The object is gone; its last state.
    Gone(Value),
    /// Deletion started (finalizers or a grace period); the object as it now is.
    Pending(Value),
}

/// The store of one resource.
pub struct Store<'a> {
    pub server: &'a ApiServer,
    pub def: &'static ResourceDef,
}

fn storage_err(def: &ResourceDef, name: &str, err: StorageError) -> ApiError {
    match err {
        StorageError::NotFound => ApiError::not_found(def, name),
        StorageError::AlreadyExists => ApiError::already_exists(def, name),
        StorageError::Conflict => ApiError::modified(def, name),
        other => other.into(),
    }
}

/// The value stored in etcd: the object without its resource version.
fn encode(obj: &Value) -> Vec<u8> {
    let mut obj = obj.clone();
    if let Some(m) = meta_mut(&mut obj) {
        m.remove("resourceVersion");
        m.remove("selfLink");
    }
    serde_json::to_vec(&obj).unwrap_or_default()
}

fn parse_stored(raw: &[u8], rv: i64) -> ApiResult<Value> {
    let mut v: Value = serde_json::from_slice(raw)
        .map_err(|e| ApiError::internal(format!("stored object is not JSON: {e}")))?;
    set_resource_version(&mut v, rv);
    Ok(v)
}

impl<'a> Store<'a> {
    pub fn new(server: &'a ApiServer, def: &'static ResourceDef) -> Store<'a> {
        Store { server, def }
    }

    fn key(&self, ns: &str, name: &str) -> String {
        format!(
            "{}{}",
            self.def.storage_prefix(&self.server.root),
            self.def.key(ns, name)
        )
    }

    /// Reads one object from etcd with its mod revision.
    pub async fn read(&self, ns: &str, name: &str) -> ApiResult<(Value, i64)> {
        match self.server.etcd.get(&self.key(ns, name)).await? {
            Some(kv) => Ok((parse_stored(&kv.value, kv.mod_revision)?, kv.mod_revision)),
            None => Err(ApiError::not_found(self.def, name)),
        }
    }

    /// GET: from the cache when any version will do, else from etcd.
    pub async fn get(&self, ns: &str, name: &str, rv: Option<&str>) -> ApiResult<Value> {
        if rv == Some("0") {
            let (obj, _) = self.server.cache(self.def).get(&self.def.key(ns, name));
            return match obj {
                Some(o) => o
                    .value()
                    .map_err(|e| ApiError::internal(format!("cached object: {e}"))),
                None => Err(ApiError::not_found(self.def, name)),
            };
        }
        Ok(self.read(ns, name).await?.0)
    }

    /// Sets and checks the parts of metadata every create shares.
    fn prepare_metadata_for_create(&self, ns: &str, obj: &mut Value) -> ApiResult<()> {
        let def = self.def;
        let kind_ok = obj
            .get("kind")
            .and_then(Value::as_str)
            .is_none_or(|k| k.is_empty() || k == def.kind);
        if !kind_ok {
            return Err(ApiError::bad_request(format!(
                "the kind of the provided object ({}) does not match the resource ({})",
                meta::str_at(obj, "/kind"),
                def.kind
            )));
        }
        if let Some(o) = obj.as_object_mut() {
            o.insert("kind".into(), json!(def.kind));
            o.insert("apiVersion".into(), json!(def.api_version()));
        }
        let body_ns = meta::namespace(obj).to_string();
        let Some(m) = meta_mut(obj) else {
            return Err(ApiError::bad_request("the object must be a JSON object"));
        };
        if def.namespaced {
            if !body_ns.is_empty() && body_ns != ns {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
            m.insert("namespace".into(), json!(ns));
        } else {
            m.remove("namespace");
        }
        if m.get("resourceVersion")
            .and_then(Value::as_str)
            .is_some_and(|rv| !rv.is_empty())
        {
            return Err(ApiError::bad_request(
                "resourceVersion should not be set on objects to be created",
            ));
        }
        let name = m.get("name").and_then(Value::as_str).unwrap_or_default();
        let generate = m
            .get("generateName")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if name.is_empty() && !generate.is_empty() {
            let generated = meta::generate_name(generate);
            m.insert("name".into(), json!(generated));
        }
        m.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
        m.insert("creationTimestamp".into(), json!(meta::now()));
        m.remove("deletionTimestamp");
        m.remove("deletionGracePeriodSeconds");
        m.remove("selfLink");
        if def.tracks_generation {
            m.insert("generation".into(), json!(1));
        } else {
            m.remove("generation");
        }
        Ok(())
    }

    /// Unknown fields in a patched object: an error under Strict, warnings under Warn.
    fn check_unknown_fields(
        &self,
        obj: &Value,
        opts: &WriteOptions,
        warnings: &mut Vec<String>,
    ) -> ApiResult<()> {
        if opts.field_validation == FieldValidation::Ignore {
            return Ok(());
        }
        let defs = apimachinery::schema::definitions();
        let Some(root) = defs.root(self.def.group, self.def.version, self.def.kind) else {
            return Ok(());
        };
        let issues: Vec<apimachinery::fieldvalidation::StrictIssue> =
            apimachinery::fieldvalidation::unknown_fields(root.definition, obj)
                .into_iter()
                .map(apimachinery::fieldvalidation::StrictIssue::UnknownField)
                .collect();
        if issues.is_empty() {
            return Ok(());
        }
        if opts.field_validation == FieldValidation::Strict {
            return Err(ApiError::bad_request(
                apimachinery::fieldvalidation::strict_decoding_error(&issues),
            ));
        }
        warnings.extend(apimachinery::fieldvalidation::warnings(&issues));
        Ok(())
    }

    /// Runs the admission chain (mutating, then validating plugins) over a write.
    fn admit(
        &self,
        op: Operation,
        ns: &str,
        obj: &mut Value,
        old: Option<&Value>,
    ) -> ApiResult<()> {
        let attrs = self.attributes(op, ns, obj);
        self.server.admission.admit(self.server, &attrs, obj, old)
    }

    fn attributes<'n>(&self, op: Operation, ns: &'n str, obj: &Value) -> Attributes<'n> {
        Attributes {
            operation: op,
            def: self.def,
            namespace: ns,
            name: meta::name(obj).to_string(),
        }
    }

    fn validate(&self, obj: &Value, old: Option<&Value>) -> ApiResult<()> {
        let (group, kind) = (self.def.group, self.def.kind);
        let errors = match old {
            None => apis::validation::validate_create(group, kind, obj),
            Some(old) => apis::validation::validate_update(group, kind, obj, old),
        };
        if errors.is_empty() {
            return Ok(());
        }
        Err(ApiError::from_field_errors(
            self.def,
            meta::name(obj),
            &errors,
        ))
    }

    /// POST.
    pub async fn create(&self, ns: &str, mut obj: Value, opts: &WriteOptions) -> ApiResult<Value> {
        if self.def.namespaced && self.server.config.namespace_lifecycle {
            crate::admission::namespace_lifecycle::check_create(self.server, ns).await?;
        }
        self.prepare_metadata_for_create(ns, &mut obj)?;
        if self.def.has(Subresource::Status)
            && self.def.behaviour != Behaviour::Pod
            && self.def.kind != "Node"
        {
            if let Some(o) = obj.as_object_mut() {
                o.remove("status");
            }
        }
        match self.def.behaviour {
            Behaviour::Pod => pod::prepare_for_create(&mut obj),
            Behaviour::Namespace => namespace::prepare_for_create(&mut obj),
            Behaviour::Job => job::prepare_for_create(&mut obj),
            _ => {}
        }
        apis::defaults::apply(self.def.group, self.def.kind, &mut obj);
        self.admit(Operation::Create, ns, &mut obj, None)?;
        let name = meta::name(&obj).to_string();
        let allocation = if self.def.behaviour == Behaviour::Service {
            Some(service::allocate(self.server, self.def, &mut obj, opts.dry_run).await?)
        } else {
            None
        };
        let mut checked = self.validate(&obj, None);
        if checked.is_ok() {
            let attrs = self.attributes(Operation::Create, ns, &obj);
            checked = self
                .server
                .admission
                .admit_quota(self.server, &attrs, &obj, None, opts.dry_run)
                .await;
        }
        if let Err(e) = checked {
            if let Some(a) = allocation {
                a.release(self.server).await;
            }
            return Err(e);
        }
        if opts.dry_run {
            return Ok(obj);
        }
        match self
            .server
            .etcd
            .create(&self.key(ns, &name), encode(&obj))
            .await
        {
            Ok(rev) => {
                set_resource_version(&mut obj, rev);
                Ok(obj)
            }
            Err(err) => {
                if let Some(a) = allocation {
                    a.release(self.server).await;
                }
                Err(storage_err(self.def, &name, err))
            }
        }
    }

    /// Reads the current object, lets `update` compute the new one, and writes it with a
    /// compare-and-swap, retrying on conflicts unless the caller set a precondition. Writes of
    /// the main resource (`charge_quota`) pass ResourceQuota admission before they are stored.
    async fn guaranteed_update<F>(
        &self,
        ns: &str,
        name: &str,
        allow_create: bool,
        dry_run: bool,
        charge_quota: bool,
        mut update: F,
    ) -> ApiResult<(Value, bool)>
    where
        F: FnMut(Option<&Value>) -> ApiResult<UpdateStep>,
    {
        let key = self.key(ns, name);
        for _ in 0..16 {
            let current = self.server.etcd.get(&key).await?;
            let (old, old_rev) = match &current {
                Some(kv) => (
                    Some(parse_stored(&kv.value, kv.mod_revision)?),
                    kv.mod_revision,
                ),
                None => (None, 0),
            };
            if old.is_none() && !allow_create {
                return Err(ApiError::not_found(self.def, name));
            }
            let step = update(old.as_ref())?;
            let (mut new, retry_on_conflict) = match step {
                UpdateStep::Write { object, retry } => (object, retry),
                UpdateStep::Unchanged(obj) => return Ok((obj, false)),
                UpdateStep::Delete if dry_run => return Ok((old.unwrap_or_default(), false)),
                UpdateStep::Delete => {
                    let deleted_at = self
                        .server
                        .etcd
                        .delete(&key, old_rev)
                        .await
                        .map_err(|e| storage_err(self.def, name, e));
                    match deleted_at {
                        Ok(rev) => {
                            let mut last = old.unwrap_or_default();
                            set_resource_version(&mut last, rev);
                            self.after_delete(&last).await;
                            return Ok((last, false));
                        }
                        Err(e) if e.code == 409 => continue,
                        Err(e) => return Err(e),
                    }
                }
            };
            if charge_quota {
                let op = if old.is_some() {
                    Operation::Update
                } else {
                    Operation::Create
                };
                let attrs = self.attributes(op, ns, &new);
                self.server
                    .admission
                    .admit_quota(self.server, &attrs, &new, old.as_ref(), dry_run)
                    .await?;
            }
            if dry_run {
                return Ok((new, old.is_none()));
            }
            let result = match &old {
                Some(old) => {
                    if encode(old) == encode(&new) {
                        return Ok((old.clone(), false));
                    }
                    self.server.etcd.update(&key, encode(&new), old_rev).await
                }
                None => self.server.etcd.create(&key, encode(&new)).await,
            };
            match result {
                Ok(rev) => {
                    set_resource_version(&mut new, rev);
                    return Ok((new, old.is_none()));
                }
                Err(
                    StorageError::Conflict | StorageError::AlreadyExists | StorageError::NotFound,
                ) if retry_on_conflict => continue,
                Err(e) => return Err(storage_err(self.def, name, e)),
            }
        }
        Err(ApiError::modified(self.def, name))
    }

    /// PUT of the object or its status: `incoming` replaces what the caller may change.
    pub async fn update(
        &self,
        ns: &str,
        name: &str,
        incoming: Value,
        sub: Option<Subresource>,
        opts: &WriteOptions,
    ) -> ApiResult<(Value, bool)> {
        let body_name = meta::name(&incoming);
        if !body_name.is_empty() && body_name != name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
        let body_ns = meta::namespace(&incoming);
        if self.def.namespaced && !body_ns.is_empty() && body_ns != ns {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        let precondition = meta::resource_version(&incoming).to_string();
        let allow_create = self.def.create_on_update && sub.is_none();
        if allow_create && self.def.namespaced && self.server.config.namespace_lifecycle {
            crate::admission::namespace_lifecycle::check_create(self.server, ns).await?;
        }
        let (obj, created) = self
            .guaranteed_update(ns, name, allow_create, opts.dry_run, sub.is_none(), |old| {
                if let Some(old) = old {
                    if !precondition.is_empty() && precondition != meta::resource_version(old) {
                        return Err(ApiError::modified(self.def, name));
                    }
                }
                let new = match old {
                    Some(old) => self.prepare_update(old, incoming.clone(), sub)?,
                    None => {
                        let mut obj = incoming.clone();
                        if let Some(m) = meta_mut(&mut obj) {
                            m.remove("resourceVersion");
                        }
                        self.prepare_metadata_for_create(ns, &mut obj)?;
                        apis::defaults::apply(self.def.group, self.def.kind, &mut obj);
                        self.admit(Operation::Create, ns, &mut obj, None)?;
                        self.validate(&obj, None)?;
                        obj
                    }
                };
                Ok(self.finish_update_step(old, new, precondition.is_empty()))
            })
            .await?;
        Ok((obj, created))
    }

    /// Decides whether an update writes, deletes (finalizers gone on a deleting object) or
    /// changes nothing.
    fn finish_update_step(&self, old: Option<&Value>, new: Value, retry: bool) -> UpdateStep {
        if let Some(old) = old {
            let held_by_spec =
                self.def.behaviour == Behaviour::Namespace && namespace::has_spec_finalizers(&new);
            if meta::is_deleting(&new) && meta::finalizers(&new).is_empty() && !held_by_spec {
                let graceful_pending = self.def.behaviour == Behaviour::Pod
                    && new
                        .pointer("/metadata/deletionGracePeriodSeconds")
                        .and_then(Value::as_i64)
                        .unwrap_or(0)
                        > 0;
                if !graceful_pending {
                    return UpdateStep::Delete;
                }
            }
            if encode(old) == encode(&new) {
                return UpdateStep::Unchanged(old.clone());
            }
        }
        UpdateStep::Write { object: new, retry }
    }

    /// The new object of an update: system-owned metadata kept, status or spec kept
    /// according to the subresource, generation bumped on spec changes, defaults applied and
    /// the result validated.
    fn prepare_update(
        &self,
        old: &Value,
        incoming: Value,
        sub: Option<Subresource>,
    ) -> ApiResult<Value> {
        let def = self.def;
        let mut new = match sub {
            Some(Subresource::Status) => {
                let mut merged = old.clone();
                if let (Some(o), Some(status)) = (merged.as_object_mut(), incoming.get("status")) {
                    o.insert("status".into(), status.clone());
                }
                merged
            }
            Some(Subresource::Approval) => {
                let mut merged = old.clone();
                let conditions = incoming
                    .pointer("/status/conditions")
                    .cloned()
                    .unwrap_or(Value::Null);
                if let Some(o) = merged.as_object_mut() {
                    let status = o.entry("status").or_insert_with(|| json!({}));
                    if let Some(status) = status.as_object_mut() {
                        status.insert("conditions".into(), conditions);
                    }
                }
                merged
            }
            Some(Subresource::Finalize) => {
                let mut merged = old.clone();
                if let Some(f) = incoming.pointer("/spec/finalizers") {
                    merged["spec"]["finalizers"] = f.clone();
                }
                merged
            }
            _ => {
                let mut merged = incoming;
                if def.has(Subresource::Status) {
                    if let Some(o) = merged.as_object_mut() {
                        match old.get("status") {
                            Some(s) => o.insert("status".into(), s.clone()),
                            None => o.remove("status"),
                        };
                    }
                }
                merged
            }
        };
        if let Some(o) = new.as_object_mut() {
            o.insert("kind".into(), json!(def.kind));
            o.insert("apiVersion".into(), json!(def.api_version()));
        }
        let Some(m) = meta_mut(&mut new) else {
            return Err(ApiError::bad_request("the object must be a JSON object"));
        };
        let old_meta = old.get("metadata").cloned().unwrap_or_default();
        for keep in [
            "name",
            "namespace",
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
        ] {
            match old_meta.get(keep) {
                Some(v) => m.insert(keep.into(), v.clone()),
                None => m.remove(keep),
            };
        }
        m.remove("resourceVersion");
        if meta::is_deleting(old) {
            // Finalizers may only be removed from an object being deleted, not added.
            let old_f = meta::finalizers(old);
            let new_f = meta::finalizers(&new);
            if new_f.iter().any(|f| !old_f.contains(f)) {
                return Err(ApiError::forbidden(format!(
                    "{} \"{}\" is being deleted: no new finalizers can be added if the object is being deleted",
                    def.group_resource(),
                    meta::name(old)
                )));
            }
        }
        apis::defaults::apply(def.group, def.kind, &mut new);
        if def.tracks_generation && !meta::spec_equal(old, &new) {
            let generation = old
                .pointer("/metadata/generation")
                .and_then(Value::as_i64)
                .unwrap_or(0)
                + 1;
            if let Some(m) = meta_mut(&mut new) {
                m.insert("generation".into(), json!(generation));
            }
        }
        if self.def.behaviour == Behaviour::Service {
            service::keep_allocations(old, &mut new);
        }
        let ns = meta::namespace(old).to_string();
        self.admit(Operation::Update, &ns, &mut new, Some(old))?;
        set_resource_version(&mut new, meta::resource_version(old).parse().unwrap_or(0));
        self.validate(&new, Some(old))?;
        Ok(new)
    }

    /// PATCH: applies the patch to the current object and writes it like an update.
    pub async fn patch(
        &self,
        ns: &str,
        name: &str,
        patch: PatchBody<'_>,
        sub: Option<Subresource>,
        opts: &WriteOptions,
        warnings: &mut Vec<String>,
    ) -> ApiResult<Value> {
        let PatchBody {
            patch_type,
            data: patch,
        } = patch;
        let definition = apimachinery::schema::definitions()
            .root(self.def.group, self.def.version, self.def.kind)
            .map(|r| r.definition)
            .unwrap_or_default();
        let (obj, _) = self
            .guaranteed_update(ns, name, false, opts.dry_run, sub.is_none(), |old| {
                let Some(old) = old else {
                    return Err(ApiError::not_found(self.def, name));
                };
                let patched = apimachinery::patch::apply(patch_type, definition, old, patch)
                    .map_err(|e| ApiError::from_patch(&e))?;
                // A resourceVersion the patch itself sets is a precondition; otherwise the
                // patched object carries the current one, so a conflicting write is retried by
                // re-applying the patch to the newer object, as upstream does.
                let precondition = meta::resource_version(&patched);
                if !precondition.is_empty() && precondition != meta::resource_version(old) {
                    return Err(ApiError::modified(self.def, name));
                }
                let mut local = Vec::new();
                self.check_unknown_fields(&patched, opts, &mut local)?;
                warnings.extend(local);
                let new = self.prepare_update(old, patched, sub)?;
                Ok(self.finish_update_step(Some(old), new, true))
            })
            .await?;
        Ok(obj)
    }

    /// DELETE of one object.
    pub async fn delete(&self, ns: &str, name: &str, opts: &DeleteOptions) -> ApiResult<Deleted> {
        let def = self.def;
        let mut gone = false;
        let (obj, _) = self
            .guaranteed_update(ns, name, false, opts.dry_run, false, |old| {
                let Some(old) = old else {
                    return Err(ApiError::not_found(def, name));
                };
                if let Some(uid) = &opts.precondition_uid {
                    if uid != meta::uid(old) {
                        return Err(ApiError::conflict(def, name, &format!(
                            "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                            meta::uid(old)
                        )));
                    }
                }
                if let Some(rv) = &opts.precondition_rv {
                    if rv != meta::resource_version(old) {
                        return Err(ApiError::conflict(def, name, &format!(
                            "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                            meta::resource_version(old)
                        )));
                    }
                }
                let grace = if def.behaviour == Behaviour::Pod {
                    pod::grace_period(old, opts.grace_period_seconds)
                } else {
                    0
                };
                let mut new = old.clone();
                let mut finalizers = meta::finalizers(old);
                match opts.propagation_policy.as_deref() {
                    Some("Foreground") if !finalizers.iter().any(|f| f == "foregroundDeletion") => {
                        finalizers.push("foregroundDeletion".into())
                    }
                    Some("Orphan") if !finalizers.iter().any(|f| f == "orphan") => {
                        finalizers.push("orphan".into())
                    }
                    _ => {}
                }
                if def.behaviour == Behaviour::Namespace {
                    return namespace::delete_step(old);
                }
                if finalizers.is_empty() && grace == 0 {
                    gone = true;
                    return Ok(UpdateStep::Delete);
                }
                let Some(m) = meta_mut(&mut new) else {
                    return Ok(UpdateStep::Delete);
                };
                m.insert("finalizers".into(), json!(finalizers));
                if m.get("finalizers").and_then(Value::as_array).is_some_and(Vec::is_empty) {
                    m.remove("finalizers");
                }
                let already = old.pointer("/metadata/deletionGracePeriodSeconds").and_then(Value::as_i64);
                if already.is_none_or(|g| grace < g) || !meta::is_deleting(old) {
                    m.insert("deletionTimestamp".into(), json!(meta::now_plus(grace)));
                    m.insert("deletionGracePeriodSeconds".into(), json!(grace));
                }
                if meta::finalizers(&new).is_empty() && grace == 0 {
                    gone = true;
                    return Ok(UpdateStep::Delete);
                }
                Ok(UpdateStep::Write { object: new, retry: true })
            })
            .await?;
        Ok(if gone {
            Deleted::Gone(obj)
        } else {
            Deleted::Pending(obj)
        })
    }

    /// Cleans up what a deleted object held (service IPs and ports).
    async fn after_delete(&self, obj: &Value) {
        if self.def.behaviour == Behaviour::Service {
            service::release_all(self.server, obj).await;
        }
    }

    /// LIST.
    pub async fn list(&self, ns: &str, opts: &ListOptions) -> ApiResult<ListResult> {
        let cache = self.server.cache(self.def);
        let prefix = if self.def.namespaced && !ns.is_empty() {
            format!("{ns}/")
        } else {
            String::new()
        };
        let rv = opts.resource_version.as_deref().unwrap_or("");
        let paged = opts.limit > 0 || opts.continue_token.is_some();
        if opts.exact || (paged && rv != "0") {
            return self.list_from_etcd(&prefix, opts).await;
        }
        let wanted: i64 = match rv {
            "" => self.server.etcd.current_revision().await?,
            "0" => 0,
            other => other
                .parse()
                .map_err(|_| ApiError::bad_request(format!("invalid resourceVersion {other:?}")))?,
        };
        if wanted > 0
            && !self
                .server
                .reflector
                .wait_for(wanted, Duration::from_secs(3))
                .await
        {
            if rv.is_empty() {
                return self.list_from_etcd(&prefix, opts).await;
            }
            return Err(ApiError::timeout(format!(
                "Too large resource version: {wanted}, current: {}",
                cache.revision()
            )));
        }
        let snapshot = cache.snapshot(&prefix);
        let objects = snapshot
            .objects
            .into_iter()
            .filter(|o| {
                opts.labels.matches(&o.attrs.labels) && opts.fields.matches(&o.attrs.fields)
            })
            .collect();
        Ok(ListResult {
            rv: snapshot.rv,
            objects,
            continue_token: None,
            remaining: None,
        })
    }

    /// A (paginated) list read from etcd, at the continue token's revision if any.
    async fn list_from_etcd(&self, prefix: &str, opts: &ListOptions) -> ApiResult<ListResult> {
        let base = self.def.storage_prefix(&self.server.root);
        let full_prefix = format!("{base}{prefix}");
        let (mut start, mut revision) = match &opts.continue_token {
            Some(token) => {
                let (key, rev) = continue_token::decode(token)?;
                (Some(format!("{base}{key}")), rev)
            }
            None => (None, 0),
        };
        if opts.exact && revision == 0 {
            revision = opts
                .resource_version
                .as_deref()
                .and_then(|r| r.parse().ok())
                .unwrap_or(0);
        }
        let limit = opts.limit.max(0);
        let page = if limit > 0 { limit + 1 } else { 0 };
        let mut objects = Vec::new();
        let mut next_key: Option<String> = None;
        'pages: loop {
            let range = self
                .server
                .etcd
                .range(&full_prefix, start.as_deref(), page, revision)
                .await
                .map_err(|e| match e {
                    StorageError::Compacted { .. } => ApiError::gone(
                        "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results.",
                    ),
                    other => other.into(),
                })?;
            if revision == 0 {
                revision = range.revision;
            }
            let mut last_key = None;
            for kv in &range.kvs {
                let Some(key) = kv.key.strip_prefix(&base) else {
                    continue;
                };
                if limit > 0 && objects.len() as i64 == limit {
                    next_key = Some(key.to_string());
                    break 'pages;
                }
                last_key = Some(kv.key.clone());
                let obj = Object::decode(self.def, key, &kv.value, kv.mod_revision)
                    .map_err(|e| ApiError::internal(format!("stored object is not JSON: {e}")))?;
                if opts.labels.matches(&obj.attrs.labels) && opts.fields.matches(&obj.attrs.fields)
                {
                    objects.push(Arc::new(obj));
                }
            }
            match last_key {
                Some(last) if limit > 0 && range.more => start = Some(format!("{last}\0")),
                _ => break,
            }
        }
        Ok(ListResult {
            rv: revision,
            objects,
            continue_token: next_key.map(|k| continue_token::encode(&k, revision)),
            remaining: None,
        })
    }
}

/// What a step of a guaranteed update decided.
pub enum UpdateStep {
    Write { object: Value, retry: bool },
    Unchanged(Value),
    Delete,
}

impl Store<'_> {
    /// Writes a system change (binding, scale, eviction bookkeeping) computed from the current
    /// object by `change`, retrying on conflicts; no update strategy runs.
    pub async fn mutate<F>(&self, ns: &str, name: &str, mut change: F) -> ApiResult<Value>
    where
        F: FnMut(&Value) -> ApiResult<Value>,
    {
        let (obj, _) = self
            .guaranteed_update(ns, name, false, false, false, |old| {
                let Some(old) = old else {
                    return Err(ApiError::not_found(self.def, name));
                };
                Ok(UpdateStep::Write {
                    object: change(old)?,
                    retry: true,
                })
            })
            .await?;
        Ok(obj)
    }
}
