//! Event recording for controllers: events are published in the background (as upstream's
//! broadcaster does) so that a slow event write never delays a sync.

use k8s_openapi::api::core::v1::ObjectReference;
use kube::{
    runtime::events::{Event, EventType, Recorder as KubeRecorder, Reporter},
    Client, Resource,
};

/// Publishes events on behalf of one controller.
#[derive(Clone)]
pub struct Recorder {
    inner: KubeRecorder,
}

impl Recorder {
    pub fn new(client: Client, controller: &str, instance: &str) -> Recorder {
        Recorder {
            inner: KubeRecorder::new(
                client,
                Reporter {
                    controller: controller.to_string(),
                    instance: Some(instance.to_string()),
                },
            ),
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

    /// Records an event about the object `reference` names.
    pub fn emit(&self, reference: ObjectReference, type_: EventType, reason: &str, note: String) {
        let inner = self.inner.clone();
        let event = Event {
            type_,
            reason: reason.to_string(),
            note: Some(note),
            action: reason.to_string(),
            secondary: None,
        };
        tokio::spawn(async move {
            if let Err(err) = inner.publish(&event, &reference).await {
                tracing::debug!(%err, reason = %event.reason, "publishing event");
            }
        });
    }
}
