//! Event recording for controllers, on the shared recorder: events are published in the
//! background (as upstream's broadcaster does) so that a slow event write never delays a sync.

use std::sync::Arc;

use component_base::event_recorder::{EventRecorder, EventType};
use k8s_openapi::api::core::v1::ObjectReference;
use kube::{Client, Resource};

/// Publishes events on behalf of one controller.
#[derive(Clone)]
pub struct Recorder {
    inner: Arc<EventRecorder>,
}

impl Recorder {
    pub fn new(client: Client, controller: &str, instance: &str) -> Recorder {
        Recorder {
            inner: Arc::new(EventRecorder::new(client, controller, instance)),
        }
    }

    /// Records a Normal event about `obj`.
    pub fn normal<K: Resource<DynamicType = ()>>(&self, obj: &K, reason: &str, note: String) {
        self.emit(obj.object_ref(&()), EventType::Normal, reason, note);
    }

    /// Records a Warning event about `obj`.
    pub fn warning<K: Resource<DynamicType = ()>>(&self, obj: &K, reason: &str, note: String) {
        self.emit(obj.object_ref(&()), EventType::Warning, reason, note);
    }

    fn emit(&self, reference: ObjectReference, type_: EventType, reason: &str, note: String) {
        let inner = self.inner.clone();
        let reason = reason.to_string();
        tokio::spawn(async move {
            inner
                .record(&reference, type_, &reason, &reason, &note)
                .await;
        });
    }
}
