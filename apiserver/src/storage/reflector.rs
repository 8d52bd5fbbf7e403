//! Feeds every watch cache from one etcd watch on the whole registry prefix: one initial listing
//! at a single revision, then every change in revision order. Because all resources share the
//! watch, each cache is current to the same revision once an etcd response is applied.

use std::{collections::HashMap, sync::Arc, time::Duration};

use futures::StreamExt;
use tokio::sync::{mpsc, watch};

use super::{cache::Cache, etcd::Etcd, object::Object, StorageError};

/// The running reflector: ask it to make etcd report progress when a consistent read waits.
#[derive(Clone)]
pub struct Reflector {
    progress_requests: mpsc::Sender<()>,
    revision: watch::Receiver<i64>,
}

/// The caches, keyed by their storage prefix (`/registry/<resource>/`).
pub type Caches = HashMap<String, Arc<Cache>>;

impl Reflector {
    /// Lists every cache at one revision, then follows the etcd watch in the background.
    pub async fn start(
        etcd: Etcd,
        prefix: String,
        caches: Arc<Caches>,
    ) -> Result<Reflector, StorageError> {
        let rev = relist(&etcd, &caches).await?;
        let (progress_requests, rx) = mpsc::channel(16);
        let (revision_tx, revision) = watch::channel(rev);
        tokio::spawn(follow(etcd, prefix, caches, rev, rx, revision_tx));
        Ok(Reflector {
            progress_requests,
            revision,
        })
    }

    /// Waits until every cache is current to at least `rev`, asking etcd for a progress
    /// notification when no event arrives soon. False when it did not happen in `timeout`.
    pub async fn wait_for(&self, rev: i64, timeout: Duration) -> bool {
        let mut rx = self.revision.clone();
        if *rx.borrow() >= rev {
            return true;
        }
        let fast = tokio::time::timeout(Duration::from_millis(50), rx.wait_for(|r| *r >= rev));
        if fast.await.is_ok() {
            return true;
        }
        let _ = self.progress_requests.try_send(());
        tokio::time::timeout(timeout, rx.wait_for(|r| *r >= rev))
            .await
            .is_ok_and(|r| r.is_ok())
    }
}

/// Lists all caches at the current revision; returns it.
async fn relist(etcd: &Etcd, caches: &Caches) -> Result<i64, StorageError> {
    let rev = etcd.current_revision().await?;
    for (prefix, cache) in caches {
        let range = etcd.range(prefix, None, 0, rev).await?;
        let objects = range
            .kvs
            .iter()
            .filter_map(|kv| {
                let key = kv.key.strip_prefix(prefix.as_str())?;
                match Object::decode(cache.def, key, &kv.value, kv.mod_revision) {
                    Ok(o) => Some(o),
                    Err(err) => {
                        tracing::error!(key = %kv.key, %err, "undecodable object in etcd; skipped");
                        None
                    }
                }
            })
            .collect();
        cache.replace(objects, rev);
    }
    Ok(rev)
}

fn cache_for<'a>(caches: &'a Caches, key: &'a str) -> Option<(&'a Arc<Cache>, &'a str)> {
    // `/registry/<resource>/<rest>`: the storage prefix is everything up to the third slash.
    let third = key.match_indices('/').nth(2)?.0;
    let (prefix, rest) = key.split_at(third + 1);
    caches.get(prefix).map(|c| (c, rest))
}

async fn follow(
    etcd: Etcd,
    prefix: String,
    caches: Arc<Caches>,
    mut rev: i64,
    mut progress_requests: mpsc::Receiver<()>,
    revision: watch::Sender<i64>,
) {
    loop {
        let stream = match etcd.watch(&prefix, rev + 1).await {
            Ok(s) => s,
            Err(err) => {
                tracing::warn!(%err, "opening the etcd watch; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        let (mut sender, mut responses) = stream.split();
        loop {
            let msg = tokio::select! {
                msg = responses.next() => msg,
                Some(()) = progress_requests.recv() => {
                    if let Err(err) = sender.request_progress().await {
                        tracing::debug!(%err, "requesting watch progress");
                    }
                    continue;
                }
            };
            let resp = match msg {
                Some(Ok(resp)) => resp,
                Some(Err(err)) => {
                    tracing::warn!(%err, "etcd watch failed; resuming");
                    break;
                }
                None => {
                    tracing::warn!("etcd watch closed; resuming");
                    break;
                }
            };
            if resp.compact_revision() > 0 || resp.canceled() {
                tracing::warn!(
                    compacted = resp.compact_revision(),
                    reason = resp.cancel_reason(),
                    "etcd watch cancelled; relisting"
                );
                match relist(&etcd, &caches).await {
                    Ok(r) => rev = r,
                    Err(err) => tracing::error!(%err, "relisting after a lost watch"),
                }
                break;
            }
            for event in resp.events() {
                let Some(kv) = event.kv() else { continue };
                rev = rev.max(kv.mod_revision());
                let key = String::from_utf8_lossy(kv.key());
                let Some((cache, rest)) = cache_for(&caches, &key) else {
                    continue;
                };
                match event.event_type() {
                    etcd_client::EventType::Put => {
                        match Object::decode(cache.def, rest, kv.value(), kv.mod_revision()) {
                            Ok(obj) => cache.apply(rest, Some(obj), kv.mod_revision()),
                            Err(err) => {
                                tracing::error!(%key, %err, "undecodable object in etcd; skipped")
                            }
                        }
                    }
                    etcd_client::EventType::Delete => cache.apply(rest, None, kv.mod_revision()),
                }
            }
            if resp.events().is_empty() {
                if let Some(h) = resp.header() {
                    rev = rev.max(h.revision());
                }
            }
            for cache in caches.values() {
                cache.advance(rev);
            }
            revision.send_replace(rev);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
