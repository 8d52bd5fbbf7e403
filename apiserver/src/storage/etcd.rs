//! The etcd client wrapper: every read and write the apiserver makes, as transactions with the
//! preconditions upstream uses (create if absent, compare-and-swap on mod revision).

use std::time::Duration;

use etcd_client::{
    Client, Compare, CompareOp, ConnectOptions, GetOptions, Txn, TxnOp, TxnOpResponse,
    WatchOptions, WatchStream,
};

/// A key and value as read from etcd.
#[derive(Debug, Clone)]
pub struct Kv {
    pub key: String,
    pub value: Vec<u8>,
    pub mod_revision: i64,
}

/// What a storage operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("key not found")]
    NotFound,
    #[error("key already exists")]
    AlreadyExists,
    #[error("precondition failed: the object has been modified")]
    Conflict,
    #[error("resource version {requested} has been compacted (oldest available {oldest})")]
    Compacted { requested: i64, oldest: i64 },
    #[error("etcd: {0}")]
    Etcd(String),
}

impl From<etcd_client::Error> for StorageError {
    fn from(err: etcd_client::Error) -> Self {
        let text = err.to_string();
        if text.contains("mvcc: required revision has been compacted") {
            return StorageError::Compacted {
                requested: 0,
                oldest: 0,
            };
        }
        StorageError::Etcd(text)
    }
}

/// The outcome of a range read.
#[derive(Debug, Default)]
pub struct Range {
    pub kvs: Vec<Kv>,
    pub revision: i64,
    pub more: bool,
}

/// etcd, seen through the key prefix of this cluster.
#[derive(Clone)]
pub struct Etcd {
    client: Client,
    /// `etcd_request_duration_seconds{operation, type}`.
    latency: Option<prometheus::HistogramVec>,
}

/// The object type of a key for metrics: the resource segment of `/registry/<resource>/...`.
fn key_type(key: &str) -> &str {
    key.trim_start_matches('/').split('/').nth(1).unwrap_or("")
}

const RETRIES: usize = 3;

impl Etcd {
    /// Connects to any of `endpoints`; requests are balanced over all of them, so losing one
    /// member of a cluster does not fail requests.
    pub async fn connect(
        endpoints: &[String],
        latency: Option<prometheus::HistogramVec>,
    ) -> Result<Etcd, StorageError> {
        let endpoints: Vec<String> = endpoints
            .iter()
            .map(|e| e.trim_start_matches("http://").to_string())
            .collect();
        let options = ConnectOptions::new()
            .with_connect_timeout(Duration::from_secs(2))
            .with_timeout(Duration::from_secs(10))
            .with_keep_alive(Duration::from_secs(10), Duration::from_secs(5))
            .with_keep_alive_while_idle(true)
            .with_require_leader(true);
        let client = Client::connect(endpoints, Some(options)).await?;
        Ok(Etcd { client, latency })
    }

    /// Runs `op` again on transient failures (a member going away mid-request), recording
    /// its latency as `operation` on the type of `key`.
    async fn retry<T, F, Fut>(&self, operation: &str, key: &str, op: F) -> Result<T, StorageError>
    where
        F: Fn(Client) -> Fut,
        Fut: std::future::Future<Output = Result<T, etcd_client::Error>>,
    {
        let _timer = self.latency.as_ref().map(|h| {
            h.with_label_values(&[operation, key_type(key)])
                .start_timer()
        });
        let mut attempt = 0;
        loop {
            match op(self.client.clone()).await {
                Ok(v) => return Ok(v),
                Err(err) if attempt + 1 < RETRIES && is_transient(&err) => {
                    attempt += 1;
                    tracing::debug!(%err, attempt, "retrying etcd request");
                    tokio::time::sleep(Duration::from_millis(50 * attempt as u64)).await;
                }
                Err(err) => return Err(err.into()),
            }
        }
    }

    /// Reads one key.
    pub async fn get(&self, key: &str) -> Result<Option<Kv>, StorageError> {
        let resp = self
            .retry(
                "get",
                key,
                |mut c: Client| async move { c.get(key, None).await },
            )
            .await?;
        Ok(resp.kvs().first().map(to_kv))
    }

    /// Reads keys under `prefix` starting at `start` (inclusive), at most `limit` (0 for all),
    /// at `revision` (0 for the latest).
    pub async fn range(
        &self,
        prefix: &str,
        start: Option<&str>,
        limit: i64,
        revision: i64,
    ) -> Result<Range, StorageError> {
        let end = prefix_end(prefix);
        let from = start.unwrap_or(prefix).to_string();
        let resp = self
            .retry("list", prefix, |mut c: Client| {
                let from = from.clone();
                let end = end.clone();
                async move {
                    let mut opts = GetOptions::new().with_range(end).with_limit(limit);
                    if revision > 0 {
                        opts = opts.with_revision(revision);
                    }
                    c.get(from, Some(opts)).await
                }
            })
            .await
            .map_err(|e| match e {
                StorageError::Compacted { .. } => StorageError::Compacted {
                    requested: revision,
                    oldest: 0,
                },
                other => other,
            })?;
        Ok(Range {
            kvs: resp.kvs().iter().map(to_kv).collect(),
            revision: resp.header().map_or(0, |h| h.revision()),
            more: resp.more(),
        })
    }

    /// The store's current revision.
    pub async fn current_revision(&self) -> Result<i64, StorageError> {
        let resp = self
            .retry("current_revision", "", |mut c: Client| async move {
                c.get("/", Some(GetOptions::new().with_count_only())).await
            })
            .await?;
        Ok(resp.header().map_or(0, |h| h.revision()))
    }

    /// Creates `key` if it does not exist; returns the new mod revision.
    pub async fn create(&self, key: &str, value: Vec<u8>) -> Result<i64, StorageError> {
        let txn = Txn::new()
            .when([Compare::create_revision(key, CompareOp::Equal, 0)])
            .and_then([TxnOp::put(key, value, None)]);
        let resp = self
            .retry("create", key, |mut c: Client| {
                let txn = txn.clone();
                async move { c.txn(txn).await }
            })
            .await?;
        if !resp.succeeded() {
            return Err(StorageError::AlreadyExists);
        }
        Ok(resp.header().map_or(0, |h| h.revision()))
    }

    /// Replaces `key` if its mod revision is still `expected`; returns the new mod revision.
    pub async fn update(
        &self,
        key: &str,
        value: Vec<u8>,
        expected: i64,
    ) -> Result<i64, StorageError> {
        self.compare_and_swap("update", key, expected, TxnOp::put(key, value, None))
            .await
    }

    /// Deletes `key` if its mod revision is still `expected`; returns the deletion revision.
    pub async fn delete(&self, key: &str, expected: i64) -> Result<i64, StorageError> {
        self.compare_and_swap("delete", key, expected, TxnOp::delete(key, None))
            .await
    }

    /// Runs `op` if `key`'s mod revision is still `expected`: Conflict when it changed,
    /// NotFound when it is gone.
    async fn compare_and_swap(
        &self,
        operation: &str,
        key: &str,
        expected: i64,
        op: TxnOp,
    ) -> Result<i64, StorageError> {
        let txn = Txn::new()
            .when([Compare::mod_revision(key, CompareOp::Equal, expected)])
            .and_then([op])
            .or_else([TxnOp::get(key, None)]);
        let resp = self
            .retry(operation, key, |mut c: Client| {
                let txn = txn.clone();
                async move { c.txn(txn).await }
            })
            .await?;
        if resp.succeeded() {
            return Ok(resp.header().map_or(0, |h| h.revision()));
        }
        Err(conflict_or_missing(&resp.op_responses()))
    }

    /// Puts `key` unconditionally (bookkeeping keys such as allocator state).
    pub async fn put(&self, key: &str, value: Vec<u8>) -> Result<i64, StorageError> {
        let resp = self
            .retry("put", key, |mut c: Client| {
                let value = value.clone();
                async move { c.put(key, value, None).await }
            })
            .await?;
        Ok(resp.header().map_or(0, |h| h.revision()))
    }

    /// Compacts history before `revision`.
    pub async fn compact(&self, revision: i64) -> Result<(), StorageError> {
        let mut c = self.client.clone();
        c.compact(revision, None).await?;
        Ok(())
    }

    /// Compare-and-swap on a bookkeeping key's version (0 for absent); true when it applied.
    pub async fn swap_version(
        &self,
        key: &str,
        expected_version: i64,
        value: Vec<u8>,
    ) -> Result<bool, StorageError> {
        let txn = Txn::new()
            .when([Compare::version(key, CompareOp::Equal, expected_version)])
            .and_then([TxnOp::put(key, value, None)]);
        let mut c = self.client.clone();
        Ok(c.txn(txn).await?.succeeded())
    }

    /// Reads a bookkeeping key with its version.
    pub async fn get_with_version(
        &self,
        key: &str,
    ) -> Result<(Option<Vec<u8>>, i64), StorageError> {
        let mut c = self.client.clone();
        let resp = c.get(key, None).await?;
        Ok(resp
            .kvs()
            .first()
            .map_or((None, 0), |kv| (Some(kv.value().to_vec()), kv.version())))
    }

    /// Opens a watch on every key under `prefix` from `start_revision`, with previous values
    /// and progress notifications.
    pub async fn watch(
        &self,
        prefix: &str,
        start_revision: i64,
    ) -> Result<WatchStream, StorageError> {
        let opts = WatchOptions::new()
            .with_prefix()
            .with_prev_key()
            .with_progress_notify()
            .with_start_revision(start_revision);
        let mut c = self.client.clone();
        Ok(c.watch(prefix, Some(opts)).await?)
    }
}

fn is_transient(err: &etcd_client::Error) -> bool {
    matches!(
        err,
        etcd_client::Error::TransportError(_) | etcd_client::Error::GRpcStatus(_)
    ) && !err.to_string().contains("compacted")
}

fn to_kv(kv: &etcd_client::KeyValue) -> Kv {
    Kv {
        key: String::from_utf8_lossy(kv.key()).into_owned(),
        value: kv.value().to_vec(),
        mod_revision: kv.mod_revision(),
    }
}

fn conflict_or_missing(ops: &[TxnOpResponse]) -> StorageError {
    match ops.first() {
        Some(TxnOpResponse::Get(get)) if !get.kvs().is_empty() => StorageError::Conflict,
        _ => StorageError::NotFound,
    }
}

/// The smallest key greater than every key with this prefix.
pub fn prefix_end(prefix: &str) -> Vec<u8> {
    let mut end = prefix.as_bytes().to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_type_is_the_resource_segment() {
        assert_eq!(key_type("/registry/pods/ns/p"), "pods");
        assert_eq!(key_type(""), "");
    }

    #[test]
    fn prefix_end_increments_last_byte() {
        assert_eq!(prefix_end("/registry/pods/"), b"/registry/pods0".to_vec());
    }
}
