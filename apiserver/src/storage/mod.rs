//! Storage: etcd as the source of truth, and a watch cache per resource fed by one etcd watch.

pub mod cache;
pub mod compactor;
pub mod etcd;
pub mod object;
pub mod reflector;

pub use cache::Cache;
pub use etcd::{Etcd, StorageError};
pub use object::{EventType, Object, WatchEvent};
