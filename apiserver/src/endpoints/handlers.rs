//! The resource verbs: decoding requests, calling the generic store, and encoding objects,
//! lists and tables.

use std::sync::Arc;

use axum::{
    body::Body,
    http::{header, HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
};
use bytes::Bytes;
use serde_json::{json, Value};

use super::{
    body,
    negotiation::{Format, Output},
    query::{merge_delete_body, Query},
    request_info::RequestInfo,
    table::{self, IncludeObject},
};
use crate::{
    errors::{ApiError, ApiResult},
    registry::{
        catalog, event, meta, pod, scale,
        store::{Deleted, ListResult, PatchBody, Store},
        Behaviour, ResourceDef, Subresource,
    },
    server::ApiServer,
    storage::Object,
};

/// One resource request, resolved.
pub struct Request<'a> {
    pub server: &'a ApiServer,
    pub info: &'a RequestInfo,
    /// The resource as addressed (events.k8s.io Events, for instance).
    pub def: &'static ResourceDef,
    /// The resource as stored.
    pub storage: &'static ResourceDef,
    pub query: &'a Query,
    pub headers: &'a HeaderMap,
    pub format: Format,
    pub body: Bytes,
}

impl Request<'_> {
    fn store(&self) -> Store<'_> {
        Store::new(self.server, self.storage)
    }

    fn converts(&self) -> bool {
        self.def.behaviour == Behaviour::Event
    }

    /// The stored form of an object as the addressed version shows it.
    fn present(&self, obj: Value) -> Value {
        if self.converts() {
            event::to_events_api(&obj)
        } else {
            obj
        }
    }

    fn content_type(&self) -> &str {
        self.headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("application/json")
    }

    fn decode_body(&self, warnings: &mut Vec<String>) -> ApiResult<Value> {
        let opts = self.query.write_options()?;
        let obj = body::decode(
            self.def,
            self.content_type(),
            &self.body,
            opts.field_validation,
            warnings,
        )?;
        if self.converts() {
            return Ok(event::to_core(&obj));
        }
        Ok(obj)
    }

    fn subresource(&self) -> ApiResult<Option<Subresource>> {
        if self.info.subresource.is_empty() {
            return Ok(None);
        }
        self.def
            .subresources
            .iter()
            .copied()
            .find(|s| s.name() == self.info.subresource)
            .map(Some)
            .ok_or_else(|| {
                ApiError::not_found_path(&format!(
                    "{}/{}",
                    self.info.resource, self.info.subresource
                ))
            })
    }
}

/// A JSON response with `Warning` headers.
pub fn json_response(code: StatusCode, value: &Value, warnings: &[String]) -> Response {
    bytes_response(
        code,
        Bytes::from(serde_json::to_vec(value).unwrap_or_default()),
        warnings,
    )
}

fn bytes_response(code: StatusCode, body: Bytes, warnings: &[String]) -> Response {
    let mut resp = (code, Body::from(body)).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    for w in warnings {
        let text = format!("299 - \"{}\"", w.replace('"', "\\\""));
        if let Ok(v) = HeaderValue::from_str(&text) {
            resp.headers_mut().append(header::WARNING, v);
        }
    }
    resp
}

/// An object in the negotiated representation.
fn object_response(
    req: &Request<'_>,
    code: StatusCode,
    obj: Value,
    warnings: &[String],
) -> Response {
    let obj = req.present(obj);
    match req.format.output {
        Output::Table => {
            let include = IncludeObject::parse(req.query.get("includeObject"));
            let rv = meta::resource_version(&obj).to_string();
            let t = table::table(req.def, &[obj], include, json!({ "resourceVersion": rv }));
            json_response(code, &t, warnings)
        }
        Output::PartialMetadata | Output::PartialMetadataList => {
            json_response(code, &table::partial_metadata(&obj), warnings)
        }
        Output::Object => json_response(code, &obj, warnings),
    }
}

/// Dispatches a resource request to its verb.
pub async fn handle(req: Request<'_>) -> ApiResult<Response> {
    let sub = req.subresource()?;
    let info = req.info;
    if !info.namespace.is_empty() && !req.def.namespaced && req.def.plural != "namespaces" {
        return Err(ApiError::not_found_path(&info.resource));
    }
    if req.def.namespaced
        && info.namespace.is_empty()
        && !matches!(info.verb.as_str(), "list" | "watch")
    {
        return Err(ApiError::not_found_path(&info.resource));
    }
    match (info.verb.as_str(), sub) {
        ("get", None | Some(Subresource::Status | Subresource::Approval)) => get(&req).await,
        ("get", Some(Subresource::Scale)) => {
            let obj = req.store().get(&info.namespace, &info.name, None).await?;
            Ok(json_response(StatusCode::OK, &scale::view(&obj), &[]))
        }
        ("list", None) => list(&req).await,
        ("watch", None) => super::watch::watch(&req).await,
        ("create", None) => create(&req).await,
        ("create", Some(Subresource::Binding)) => bind(&req).await,
        ("create", Some(Subresource::Eviction)) => evict(&req).await,
        (
            "update",
            None | Some(Subresource::Status | Subresource::Finalize | Subresource::Approval),
        ) => update(&req, sub).await,
        ("update", Some(Subresource::Scale)) => update_scale(&req).await,
        ("patch", None | Some(Subresource::Status | Subresource::Approval)) => {
            patch(&req, sub).await
        }
        ("patch", Some(Subresource::Scale)) => update_scale(&req).await,
        ("delete", None) => delete(&req).await,
        ("deletecollection", None) => delete_collection(&req).await,
        (verb, _) => Err(ApiError::method_not_supported(req.def, verb)),
    }
}

async fn get(req: &Request<'_>) -> ApiResult<Response> {
    let obj = req
        .store()
        .get(
            &req.info.namespace,
            &req.info.name,
            req.query.get("resourceVersion"),
        )
        .await?;
    Ok(object_response(req, StatusCode::OK, obj, &[]))
}

/// Builds the body of a list from cached objects, copying each object's serialized form.
fn list_json(req: &Request<'_>, result: &ListResult) -> ApiResult<Bytes> {
    let mut meta = json!({ "resourceVersion": result.rv.to_string() });
    if let Some(c) = &result.continue_token {
        meta["continue"] = json!(c);
    }
    if let Some(r) = result.remaining {
        meta["remainingItemCount"] = json!(r);
    }
    let head = json!({ "kind": req.def.list_kind(), "apiVersion": req.def.api_version(), "metadata": meta });
    let head = serde_json::to_string(&head).map_err(|e| ApiError::internal(e.to_string()))?;
    let mut out = Vec::with_capacity(
        64 + result
            .objects
            .iter()
            .map(|o| o.raw.len() + 1)
            .sum::<usize>(),
    );
    out.extend_from_slice(&head.as_bytes()[..head.len() - 1]);
    out.extend_from_slice(b",\"items\":[");
    for (i, o) in result.objects.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        if req.converts() {
            let v = req.present(o.value().map_err(|e| ApiError::internal(e.to_string()))?);
            out.extend_from_slice(&serde_json::to_vec(&v).unwrap_or_default());
        } else {
            out.extend_from_slice(&o.raw);
        }
    }
    out.extend_from_slice(b"]}");
    Ok(Bytes::from(out))
}

fn values(req: &Request<'_>, objects: &[Arc<Object>]) -> ApiResult<Vec<Value>> {
    objects
        .iter()
        .map(|o| {
            o.value()
                .map(|v| req.present(v))
                .map_err(|e| ApiError::internal(e.to_string()))
        })
        .collect()
}

async fn list(req: &Request<'_>) -> ApiResult<Response> {
    let opts = req.query.list_options(req.storage)?;
    let result = req.store().list(&req.info.namespace, &opts).await?;
    let mut list_meta = json!({ "resourceVersion": result.rv.to_string() });
    if let Some(c) = &result.continue_token {
        list_meta["continue"] = json!(c);
    }
    match req.format.output {
        Output::Object => Ok(bytes_response(
            StatusCode::OK,
            list_json(req, &result)?,
            &[],
        )),
        Output::Table => {
            let include = IncludeObject::parse(req.query.get("includeObject"));
            let t = table::table(req.def, &values(req, &result.objects)?, include, list_meta);
            Ok(json_response(StatusCode::OK, &t, &[]))
        }
        Output::PartialMetadata | Output::PartialMetadataList => {
            let items: Vec<Value> = values(req, &result.objects)?
                .iter()
                .map(table::partial_metadata)
                .collect();
            let list = json!({
                "kind": "PartialObjectMetadataList",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": list_meta,
                "items": items,
            });
            Ok(json_response(StatusCode::OK, &list, &[]))
        }
    }
}

async fn create(req: &Request<'_>) -> ApiResult<Response> {
    let mut warnings = Vec::new();
    let obj = req.decode_body(&mut warnings)?;
    let opts = req.query.write_options()?;
    let created = req.store().create(&req.info.namespace, obj, &opts).await?;
    Ok(object_response(
        req,
        StatusCode::CREATED,
        created,
        &warnings,
    ))
}

async fn update(req: &Request<'_>, sub: Option<Subresource>) -> ApiResult<Response> {
    let mut warnings = Vec::new();
    let obj = req.decode_body(&mut warnings)?;
    let opts = req.query.write_options()?;
    let (obj, created) = req
        .store()
        .update(&req.info.namespace, &req.info.name, obj, sub, &opts)
        .await?;
    let code = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(object_response(req, code, obj, &warnings))
}

async fn patch(req: &Request<'_>, sub: Option<Subresource>) -> ApiResult<Response> {
    let content_type = req.content_type().split(';').next().unwrap_or("").trim();
    let patch_type = apimachinery::patch::PatchType::from_content_type(content_type)
        .ok_or_else(|| ApiError::unsupported_media_type(content_type))?;
    let patch_body = if req.converts() {
        let v: Value = serde_json::from_slice(&req.body)
            .map_err(|e| ApiError::bad_request(format!("invalid patch: {e}")))?;
        Bytes::from(serde_json::to_vec(&event::to_core(&v)).unwrap_or_default())
    } else {
        req.body.clone()
    };
    let opts = req.query.write_options()?;
    let mut warnings = Vec::new();
    let obj = req
        .store()
        .patch(
            &req.info.namespace,
            &req.info.name,
            PatchBody {
                patch_type,
                data: &patch_body,
            },
            sub,
            &opts,
            &mut warnings,
        )
        .await?;
    Ok(object_response(req, StatusCode::OK, obj, &warnings))
}

/// PUT or PATCH of `/scale`: the new replica count is applied to the workload as a merge
/// patch, so the workload's own update rules (generation, validation) hold.
async fn update_scale(req: &Request<'_>) -> ApiResult<Response> {
    let store = req.store();
    let (ns, name) = (&req.info.namespace, &req.info.name);
    let current = store.get(ns, name, None).await?;
    let view = scale::view(&current);
    let desired = if req.info.verb == "patch" {
        let content_type = req.content_type().split(';').next().unwrap_or("").trim();
        let patch_type = apimachinery::patch::PatchType::from_content_type(content_type)
            .ok_or_else(|| ApiError::unsupported_media_type(content_type))?;
        apimachinery::patch::apply(
            patch_type,
            "io.k8s.api.autoscaling.v1.Scale",
            &view,
            &req.body,
        )
        .map_err(|e| ApiError::from_patch(&e))?
    } else {
        serde_json::from_slice(&req.body)
            .map_err(|e| ApiError::bad_request(format!("invalid Scale: {e}")))?
    };
    let mut probe = current.clone();
    scale::apply(req.storage, &mut probe, &desired).map_err(ApiError::bad_request)?;
    let mut patch = json!({ "spec": { "replicas": probe["spec"]["replicas"] } });
    if let Some(rv) = desired
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
    {
        if !rv.is_empty() && req.info.verb != "patch" {
            patch["metadata"] = json!({ "resourceVersion": rv });
        }
    }
    let opts = req.query.write_options()?;
    let mut warnings = Vec::new();
    let obj = store
        .patch(
            ns,
            name,
            PatchBody {
                patch_type: apimachinery::patch::PatchType::Merge,
                data: patch.to_string().as_bytes(),
            },
            None,
            &opts,
            &mut warnings,
        )
        .await?;
    Ok(json_response(StatusCode::OK, &scale::view(&obj), &warnings))
}

/// `pods/binding`: assigns the pod to the node a Binding names.
async fn bind(req: &Request<'_>) -> ApiResult<Response> {
    let binding: Value = body::decode(
        catalog_binding(),
        req.content_type(),
        &req.body,
        apimachinery::fieldvalidation::FieldValidation::Ignore,
        &mut Vec::new(),
    )?;
    let node = binding
        .pointer("/target/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    if node.is_empty() {
        return Err(ApiError::bad_request("Binding target name is required"));
    }
    let store = req.store();
    let def = req.storage;
    let name = req.info.name.clone();
    store
        .mutate(&req.info.namespace, &req.info.name, |pod_obj| {
            let mut new = pod_obj.clone();
            pod::bind(&mut new, &node).map_err(|m| ApiError::conflict(def, &name, &m))?;
            if let Some(annotations) = binding
                .pointer("/metadata/annotations")
                .and_then(Value::as_object)
            {
                for (k, v) in annotations {
                    new["metadata"]["annotations"][k] = v.clone();
                }
            }
            Ok(new)
        })
        .await?;
    Ok(json_response(StatusCode::CREATED, &success_status(), &[]))
}

fn catalog_binding() -> &'static ResourceDef {
    static BINDING: ResourceDef = ResourceDef {
        group: "",
        version: "v1",
        kind: "Binding",
        plural: "bindings",
        short_names: &[],
        categories: &[],
        namespaced: true,
        subresources: &[],
        fields: &[],
        tracks_generation: false,
        create_on_update: false,
        storage: "bindings",
        behaviour: Behaviour::Plain,
    };
    &BINDING
}

fn success_status() -> Value {
    json!({ "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201 })
}

/// `pods/eviction`: deletes the pod unless a PodDisruptionBudget forbids it.
async fn evict(req: &Request<'_>) -> ApiResult<Response> {
    let eviction: Value = serde_json::from_slice(&req.body)
        .or_else(|_| apimachinery::protobuf::decode(&req.body))
        .map_err(|e| ApiError::bad_request(format!("invalid Eviction: {e}")))?;
    let (ns, name) = (&req.info.namespace, &req.info.name);
    let pod_obj = req.store().get(ns, name, None).await?;
    let phase = meta::str_at(&pod_obj, "/status/phase");
    if phase != "Succeeded" && phase != "Failed" && !meta::is_deleting(&pod_obj) {
        if let Some(pdb_def) = catalog::find("policy", "v1", "poddisruptionbudgets") {
            let labels = req.storage.attrs(&pod_obj).labels;
            for pdb in req
                .server
                .cache(pdb_def)
                .snapshot(&format!("{ns}/"))
                .objects
            {
                let Ok(pdb) = pdb.value() else { continue };
                let selector = pdb
                    .pointer("/spec/selector")
                    .map(scale::selector_string)
                    .unwrap_or_default();
                let Ok(selector) = apimachinery::selector::LabelSelector::parse(&selector) else {
                    continue;
                };
                if selector.is_empty() || !selector.matches(&labels) {
                    continue;
                }
                let allowed = pdb
                    .pointer("/status/disruptionsAllowed")
                    .and_then(Value::as_i64)
                    .unwrap_or(0);
                if allowed <= 0 {
                    let mut err = ApiError::too_many_requests(
                        "Cannot evict pod as it would violate the pod's disruption budget.",
                    );
                    err.details = Some(
                        json!({"causes": [{"reason": "DisruptionBudget", "message": format!("The disruption budget {} needs {} healthy pods and has {} currently", meta::name(&pdb), pdb.pointer("/status/desiredHealthy").and_then(Value::as_i64).unwrap_or(0), pdb.pointer("/status/currentHealthy").and_then(Value::as_i64).unwrap_or(0))}]}),
                    );
                    return Err(err);
                }
                let pdb_store = Store::new(req.server, pdb_def);
                pdb_store
                    .mutate(ns, meta::name(&pdb), |current| {
                        let mut new = current.clone();
                        let left = current
                            .pointer("/status/disruptionsAllowed")
                            .and_then(Value::as_i64)
                            .unwrap_or(0);
                        if left <= 0 {
                            return Err(ApiError::too_many_requests(
                                "Cannot evict pod as it would violate the pod's disruption budget.",
                            ));
                        }
                        new["status"]["disruptionsAllowed"] = json!(left - 1);
                        Ok(new)
                    })
                    .await?;
            }
        }
    }
    let mut opts = req.query.delete_options()?;
    if let Some(options) = eviction.get("deleteOptions") {
        merge_delete_body(&mut opts, options);
    }
    req.store().delete(ns, name, &opts).await?;
    Ok(json_response(StatusCode::CREATED, &success_status(), &[]))
}

async fn delete(req: &Request<'_>) -> ApiResult<Response> {
    let mut opts = req.query.delete_options()?;
    if !req.body.is_empty() {
        let body: Value = serde_json::from_slice(&req.body)
            .or_else(|_| apimachinery::protobuf::decode(&req.body))
            .map_err(|e| ApiError::bad_request(format!("invalid DeleteOptions: {e}")))?;
        merge_delete_body(&mut opts, &body);
    }
    if opts.dry_run {
        let obj = req
            .store()
            .get(&req.info.namespace, &req.info.name, None)
            .await?;
        return Ok(object_response(req, StatusCode::OK, obj, &[]));
    }
    match req
        .store()
        .delete(&req.info.namespace, &req.info.name, &opts)
        .await?
    {
        Deleted::Gone(obj) => Ok(object_response(req, StatusCode::OK, obj, &[])),
        Deleted::Pending(obj) => Ok(object_response(req, StatusCode::ACCEPTED, obj, &[])),
    }
}

async fn delete_collection(req: &Request<'_>) -> ApiResult<Response> {
    let list_opts = req.query.list_options(req.storage)?;
    let mut opts = req.query.delete_options()?;
    if !req.body.is_empty() {
        if let Ok(body) = serde_json::from_slice::<Value>(&req.body) {
            merge_delete_body(&mut opts, &body);
        }
    }
    let store = req.store();
    let listed = store.list(&req.info.namespace, &list_opts).await?;
    let mut items = Vec::new();
    for o in &listed.objects {
        let Ok(v) = o.value() else { continue };
        if opts.dry_run {
            items.push(req.present(v));
            continue;
        }
        match store
            .delete(meta::namespace(&v), meta::name(&v), &opts)
            .await
        {
            Ok(Deleted::Gone(obj) | Deleted::Pending(obj)) => items.push(req.present(obj)),
            Err(e) if e.code == 404 => {}
            Err(e) => return Err(e),
        }
    }
    let list = json!({
        "kind": req.def.list_kind(),
        "apiVersion": req.def.api_version(),
        "metadata": { "resourceVersion": listed.rv.to_string() },
        "items": items,
    });
    Ok(json_response(StatusCode::OK, &list, &[]))
}

/// The resource a request names, or 404.
pub fn resolve(info: &RequestInfo) -> ApiResult<(&'static ResourceDef, &'static ResourceDef)> {
    let def = catalog::find(&info.group, &info.version, &info.resource)
        .ok_or_else(|| ApiError::not_found_path(&info.resource))?;
    let storage = catalog::owner_of_storage(def.storage).unwrap_or(def);
    Ok((def, storage))
}
