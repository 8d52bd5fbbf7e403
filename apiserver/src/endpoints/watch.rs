//! WATCH: a stream of `{"type", "object"}` events served from the watch cache (or, for a
//! resource version older than the cache's window, straight from etcd's history), with
//! bookmarks, `sendInitialEvents` streaming lists, selector transitions reported as
//! ADDED/DELETED as upstream does, and `timeoutSeconds`.

use std::{sync::Arc, time::Duration};

use axum::{
    body::Body,
    http::{header, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
};
use bytes::Bytes;
use futures::StreamExt;
use rand::Rng;
use serde_json::{json, Value};
use tokio::sync::{broadcast, mpsc};

use super::{
    handlers::Request,
    negotiation::Output,
    table::{self, IncludeObject},
};
use crate::{
    errors::{ApiError, ApiResult},
    registry::{event, store::ListOptions, Behaviour, ResourceDef},
    storage::{
        cache::WatchStart, object::Attrs, Cache, EventType, Object, StorageError, WatchEvent,
    },
};

/// How often an idle watch gets a bookmark, when the client allows them.
const BOOKMARK_INTERVAL: Duration = Duration::from_secs(20);

/// What the stream encodes each object as. Conversions apply to bookmarks too, so a
/// metadata-only client never meets the resource's own kind, as upstream.
struct Encoder {
    def: &'static ResourceDef,
    output: Output,
    include: IncludeObject,
    convert: bool,
    /// Whether a Table went out already: like upstream, only the first carries column
    /// definitions, later rows rely on them.
    table_headers_sent: bool,
}

impl Encoder {
    fn event(&mut self, kind: &str, obj: &Object) -> Bytes {
        if self.output == Output::Object && !self.convert {
            return frame(kind, &obj.raw);
        }
        let mut v = obj.value().unwrap_or_default();
        if self.convert {
            v = event::to_events_api(&v);
        }
        let v = self.transform(v);
        frame(kind, &serde_json::to_vec(&v).unwrap_or_default())
    }

    fn bookmark(&mut self, rv: i64, initial_end: bool) -> Bytes {
        let mut metadata = json!({ "resourceVersion": rv.to_string() });
        if initial_end {
            metadata["annotations"] = json!({ "k8s.io/initial-events-end": "true" });
        }
        let obj = json!({ "kind": self.def.kind, "apiVersion": self.def.api_version(), "metadata": metadata });
        let obj = self.transform(obj);
        frame("BOOKMARK", &serde_json::to_vec(&obj).unwrap_or_default())
    }

    /// The object in the negotiated representation.
    fn transform(&mut self, v: Value) -> Value {
        match self.output {
            Output::Table => {
                let rv = v
                    .pointer("/metadata/resourceVersion")
                    .cloned()
                    .unwrap_or_default();
                let mut t = table::table(
                    self.def,
                    &[v],
                    self.include,
                    json!({ "resourceVersion": rv }),
                );
                if self.table_headers_sent {
                    t["columnDefinitions"] = Value::Null;
                }
                self.table_headers_sent = true;
                t
            }
            Output::PartialMetadata | Output::PartialMetadataList => table::partial_metadata(&v),
            Output::Object => v,
        }
    }
}

/// One line of the stream: `{"type":..,"object":..}`.
fn frame(kind: &str, object: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(object.len() + 32);
    out.extend_from_slice(b"{\"type\":\"");
    out.extend_from_slice(kind.as_bytes());
    out.extend_from_slice(b"\",\"object\":");
    out.extend_from_slice(object);
    out.extend_from_slice(b"}\n");
    Bytes::from(out)
}

fn error_event(err: &ApiError) -> Bytes {
    Bytes::from(format!(
        "{}\n",
        json!({ "type": "ERROR", "object": err.status() })
    ))
}

/// Which objects the watch is for.
struct Filter {
    prefix: String,
    opts: ListOptions,
}

impl Filter {
    fn matches(&self, obj: &Object) -> bool {
        obj.key.starts_with(&self.prefix) && self.attrs_match(&obj.attrs)
    }

    fn attrs_match(&self, attrs: &Attrs) -> bool {
        self.opts.labels.matches(&attrs.labels) && self.opts.fields.matches(&attrs.fields)
    }

    /// The event a client sees, if any: objects moving into or out of the selection are
    /// reported as ADDED or DELETED.
    fn translate(&self, ev: &WatchEvent) -> Option<&'static str> {
        let now = self.matches(&ev.object);
        let before = ev.prev.as_ref().is_some_and(|p| self.matches(p));
        match ev.kind {
            EventType::Added => now.then_some("ADDED"),
            EventType::Deleted => (before || now).then_some("DELETED"),
            EventType::Modified => match (before, now) {
                (true, true) => Some("MODIFIED"),
                (false, true) => Some("ADDED"),
                (true, false) => Some("DELETED"),
                (false, false) => None,
            },
        }
    }
}

/// The long-running request and registered-watcher gauges of one watch, decremented when the
/// stream ends however it ends.
struct WatchGauges(prometheus::IntGauge, prometheus::IntGauge);

impl Drop for WatchGauges {
    fn drop(&mut self) {
        self.0.dec();
        self.1.dec();
    }
}

/// Serves a watch request.
pub async fn watch(req: &Request<'_>) -> ApiResult<Response> {
    let mut opts = req.query.list_options(req.storage)?;
    if !req.info.name.is_empty() {
        opts.fields = apimachinery::selector::FieldSelector::parse(&format!(
            "metadata.name={}",
            req.info.name
        ))
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    }
    let allow_bookmarks = req.query.flag("allowWatchBookmarks");
    let send_initial = req.query.get("sendInitialEvents") == Some("true");
    if send_initial && req.query.get("resourceVersionMatch") != Some("NotOlderThan") {
        return Err(ApiError::invalid(
            req.def,
            "",
            "resourceVersionMatch: Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan".into(),
            vec![],
        ));
    }
    let timeout = match req
        .query
        .get("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
    {
        Some(t) if t > 0 => Duration::from_secs(t),
        _ => Duration::from_secs(rand::rng().random_range(1800..3600)),
    };
    let mut encoder = Encoder {
        def: req.def,
        output: req.format.output,
        include: IncludeObject::parse(req.query.get("includeObject")),
        convert: req.def.behaviour == Behaviour::Event,
        table_headers_sent: false,
    };
    let server = req.server;
    let cache = server.cache(req.storage).clone();
    let prefix = if req.storage.namespaced && !req.info.namespace.is_empty() {
        format!("{}/", req.info.namespace)
    } else {
        String::new()
    };
    let rv = opts.resource_version.clone().unwrap_or_default();
    let filter = Filter { prefix, opts };

    let (tx, rx) = mpsc::channel::<Bytes>(256);
    let labels = [
        "WATCH",
        req.def.group,
        req.def.version,
        req.def.plural,
        "",
        if req.info.namespace.is_empty() {
            "cluster"
        } else {
            "namespace"
        },
        "apiserver",
    ];
    let gauge = server.metrics.longrunning.with_label_values(&labels);
    let watchers =
        server
            .metrics
            .watchers
            .with_label_values(&[req.def.group, req.def.version, req.def.kind]);
    watchers.inc();
    gauge.inc();
    let gauge = WatchGauges(gauge, watchers);
    let events_counter = server.metrics.watch_events.with_label_values(&[
        req.def.group,
        req.def.version,
        req.def.plural,
    ]);

    if rv.is_empty() || rv == "0" || send_initial {
        if send_initial && rv.is_empty() {
            let current = server.etcd.current_revision().await?;
            server
                .reflector
                .wait_for(current, Duration::from_secs(3))
                .await;
        }
        let (snapshot, live) = cache.watch_now(&filter.prefix);
        let mut initial: Vec<Bytes> = snapshot
            .objects
            .iter()
            .filter(|o| filter.matches(o))
            .map(|o| encoder.event("ADDED", o))
            .collect();
        if send_initial && allow_bookmarks {
            initial.push(encoder.bookmark(snapshot.rv, true));
        }
        tokio::spawn(async move {
            let _gauges = gauge;
            for chunk in initial {
                if tx.send(chunk).await.is_err() {
                    return;
                }
            }
            from_cache(
                tx,
                cache,
                live,
                snapshot.rv,
                filter,
                encoder,
                allow_bookmarks,
                timeout,
                events_counter,
            )
            .await;
        });
    } else {
        let start: i64 = rv
            .parse()
            .map_err(|_| ApiError::bad_request(format!("invalid resourceVersion {rv:?}")))?;
        if start > cache.revision()
            && !server
                .reflector
                .wait_for(start, Duration::from_secs(3))
                .await
        {
            return Err(ApiError::timeout(format!(
                "Too large resource version: {start}, current: {}",
                cache.revision()
            )));
        }
        match cache.watch_from(start) {
            WatchStart::Events(past, live) => {
                let mut encoder = encoder;
                tokio::spawn(async move {
                    let _gauges = gauge;
                    let mut last = start;
                    for ev in past {
                        last = ev.rv;
                        if let Some(kind) = filter.translate(&ev) {
                            if tx.send(encoder.event(kind, &ev.object)).await.is_err() {
                                return;
                            }
                        }
                    }
                    from_cache(
                        tx,
                        cache,
                        live,
                        last,
                        filter,
                        encoder,
                        allow_bookmarks,
                        timeout,
                        events_counter,
                    )
                    .await;
                });
            }
            WatchStart::TooOld { .. } => {
                let etcd_prefix = format!(
                    "{}{}",
                    req.storage.storage_prefix(&server.root),
                    filter.prefix
                );
                let stream = server.etcd.watch(&etcd_prefix, start + 1).await?;
                let def = req.storage;
                let base = req.storage.storage_prefix(&server.root);
                tokio::spawn(async move {
                    let _gauges = gauge;
                    from_etcd(tx, stream, def, base, start, filter, encoder, timeout).await;
                });
            }
        }
    }

    let body = Body::from_stream(
        tokio_stream::wrappers::ReceiverStream::new(rx).map(Ok::<_, std::convert::Infallible>),
    );
    let mut resp = (StatusCode::OK, body).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, private"),
    );
    Ok(resp)
}

#[allow(clippy::too_many_arguments)]
async fn from_cache(
    tx: mpsc::Sender<Bytes>,
    cache: Arc<Cache>,
    mut live: broadcast::Receiver<Arc<WatchEvent>>,
    mut last: i64,
    filter: Filter,
    mut encoder: Encoder,
    bookmarks: bool,
    timeout: Duration,
    counter: prometheus::IntCounter,
) {
    let deadline = tokio::time::sleep(timeout);
    tokio::pin!(deadline);
    let mut ticker = tokio::time::interval(BOOKMARK_INTERVAL);
    ticker.tick().await;
    loop {
        let chunk = tokio::select! {
            () = &mut deadline => return,
            () = tx.closed() => return,
            _ = ticker.tick(), if bookmarks => {
                // Every event up to the cache's revision is queued once the queue is empty.
                let rv = cache.revision();
                if !live.is_empty() || rv <= last {
                    continue;
                }
                last = rv;
                encoder.bookmark(rv, false)
            }
            ev = live.recv() => match ev {
                Ok(ev) => {
                    if ev.rv <= last {
                        continue;
                    }
                    last = ev.rv;
                    match filter.translate(&ev) {
                        Some(kind) => {
                            counter.inc();
                            encoder.event(kind, &ev.object)
                        }
                        None => continue,
                    }
                }
                // Too slow a reader: end the watch so the client resumes from its last
                // revision, as upstream closes slow watchers.
                Err(broadcast::error::RecvError::Lagged(_)) | Err(broadcast::error::RecvError::Closed) => return,
            },
        };
        if tx.send(chunk).await.is_err() {
            return;
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn from_etcd(
    tx: mpsc::Sender<Bytes>,
    stream: etcd_client::WatchStream,
    def: &'static ResourceDef,
    base: String,
    start: i64,
    filter: Filter,
    mut encoder: Encoder,
    timeout: Duration,
) {
    let (_sender, mut responses) = stream.split();
    let deadline = tokio::time::sleep(timeout);
    tokio::pin!(deadline);
    let mut previous: std::collections::HashMap<String, Arc<Object>> = Default::default();
    loop {
        let resp = tokio::select! {
            () = &mut deadline => return,
            () = tx.closed() => return,
            r = responses.next() => r,
        };
        let resp = match resp {
            Some(Ok(r)) => r,
            _ => return,
        };
        if resp.compact_revision() > 0 {
            let err: ApiError = StorageError::Compacted {
                requested: start,
                oldest: resp.compact_revision(),
            }
            .into();
            let _ = tx.send(error_event(&err)).await;
            return;
        }
        for e in resp.events() {
            let Some(kv) = e.kv() else { continue };
            let key = String::from_utf8_lossy(kv.key());
            let Some(rest) = key.strip_prefix(base.as_str()) else {
                continue;
            };
            let prev = e
                .prev_kv()
                .and_then(|p| Object::decode(def, rest, p.value(), p.mod_revision()).ok())
                .map(Arc::new)
                .or_else(|| previous.get(rest).cloned());
            let (kind, object) = match e.event_type() {
                etcd_client::EventType::Put => {
                    let Ok(obj) = Object::decode(def, rest, kv.value(), kv.mod_revision()) else {
                        continue;
                    };
                    let kind = if kv.create_revision() == kv.mod_revision() {
                        EventType::Added
                    } else {
                        EventType::Modified
                    };
                    (kind, Arc::new(obj))
                }
                etcd_client::EventType::Delete => {
                    let Some(p) = &prev else { continue };
                    let mut last = p.value().unwrap_or(Value::Null);
                    (
                        EventType::Deleted,
                        Arc::new(Object::from_value(def, rest, &mut last, kv.mod_revision())),
                    )
                }
            };
            previous.insert(rest.to_string(), object.clone());
            let ev = WatchEvent {
                kind,
                rv: kv.mod_revision(),
                object,
                prev,
            };
            if let Some(kind) = filter.translate(&ev) {
                if tx.send(encoder.event(kind, &ev.object)).await.is_err() {
                    return;
                }
            }
        }
    }
}
