//! An `events.k8s.io/v1` event recorder, as client-go's events broadcaster: the first occurrence
//! of an event creates an Event; repeats of the same event (same object, reason, action and
//! note) within the series window update that Event's `series` instead of creating new ones.

use std::{
    collections::HashMap,
    hash::{BuildHasher, RandomState},
    sync::Mutex,
    time::{Duration, Instant},
};

use k8s_openapi::{
    api::{
        core::v1::ObjectReference,
        events::v1::{Event, EventSeries},
    },
    apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta},
};
use kube::{
    api::{Api, Patch, PatchParams, PostParams},
    Client,
};

/// Repeats within this window join the existing Event's series (upstream: 6 minutes).
const SERIES_WINDOW: Duration = Duration::from_secs(6 * 60);
/// `note` is limited to 1 kB by validation.
const MAX_NOTE_BYTES: usize = 1024;

/// Normal or Warning, as upstream's `corev1.EventTypeNormal/Warning`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Normal,
    Warning,
}

impl EventType {
    fn as_str(self) -> &'static str {
        match self {
            EventType::Normal => "Normal",
            EventType::Warning => "Warning",
        }
    }
}

struct Series {
    namespace: String,
    name: String,
    count: i32,
    last: Instant,
}

/// Records events for one reporting controller and instance.
pub struct EventRecorder {
    client: Client,
    controller: String,
    instance: String,
    series: Mutex<SeriesCache>,
    /// Hashes event identities for the series cache.
    identity: RandomState,
}

/// Recent events by identity, pruned of expired entries at most once per prune interval. An
/// identity is kept as its hash: a scheduler records one for every pod it places, and the
/// identity's text (object, reason and note) would be most of each entry.
struct SeriesCache {
    entries: HashMap<u64, Series>,
    last_prune: Instant,
}

/// How often expired series are dropped (pruning on every event would be quadratic).
const PRUNE_INTERVAL: Duration = Duration::from_secs(30);

fn truncate(note: &str) -> String {
    if note.len() <= MAX_NOTE_BYTES {
        return note.to_string();
    }
    let mut end = MAX_NOTE_BYTES - 3;
    while !note.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &note[..end])
}

impl EventRecorder {
    pub fn new(client: Client, controller: &str, instance: &str) -> EventRecorder {
        EventRecorder {
            client,
            controller: controller.into(),
            instance: instance.into(),
            identity: RandomState::new(),
            series: Mutex::new(SeriesCache {
                entries: HashMap::new(),
                last_prune: Instant::now(),
            }),
        }
    }

    /// Records an event about `regarding`; failures are logged, never returned, as upstream.
    pub async fn record(
        &self,
        regarding: &ObjectReference,
        event_type: EventType,
        reason: &str,
        action: &str,
        note: &str,
    ) {
        let note = truncate(note);
        let namespace = regarding
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into());
        let key = self.identity.hash_one((
            &namespace,
            regarding.name.as_deref(),
            regarding.uid.as_deref(),
            reason,
            action,
            &note,
        ));
        let api: Api<Event> = Api::namespaced(self.client.clone(), &namespace);
        let now = MicroTime(jiff::Timestamp::now());
        let repeat = {
            let mut series = self.series.lock().unwrap_or_else(|e| e.into_inner());
            if series.last_prune.elapsed() > PRUNE_INTERVAL {
                series
                    .entries
                    .retain(|_, s| s.last.elapsed() < SERIES_WINDOW);
                series.last_prune = Instant::now();
            }
            series
                .entries
                .get_mut(&key)
                .filter(|s| s.last.elapsed() < SERIES_WINDOW)
                .map(|s| {
                    s.count += 1;
                    s.last = Instant::now();
                    (s.namespace.clone(), s.name.clone(), s.count)
                })
        };
        if let Some((ns, name, count)) = repeat {
            let patch = serde_json::json!({
                "series": EventSeries { count, last_observed_time: now }
            });
            let api: Api<Event> = Api::namespaced(self.client.clone(), &ns);
            if let Err(err) = api
                .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                tracing::warn!(%err, event = %name, reason, "updating event series");
            }
            return;
        }
        let name = format!(
            "{}.{:x}",
            regarding.name.as_deref().unwrap_or("object"),
            jiff::Timestamp::now().as_nanosecond()
        );
        let event = Event {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(namespace.clone()),
                ..Default::default()
            },
            event_time: Some(now),
            action: Some(action.into()),
            reason: Some(reason.into()),
            note: Some(note),
            type_: Some(event_type.as_str().into()),
            regarding: Some(regarding.clone()),
            reporting_controller: Some(self.controller.clone()),
            reporting_instance: Some(self.instance.clone()),
            ..Default::default()
        };
        match api.create(&PostParams::default(), &event).await {
            Ok(_) => {
                let mut series = self.series.lock().unwrap_or_else(|e| e.into_inner());
                series.entries.insert(
                    key,
                    Series {
                        namespace,
                        name,
                        count: 1,
                        last: Instant::now(),
                    },
                );
            }
            Err(err) => tracing::warn!(%err, reason, "recording event"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_notes_are_truncated_on_a_char_boundary() {
        let note = "é".repeat(600);
        let t = truncate(&note);
        assert!(t.len() <= MAX_NOTE_BYTES);
        assert!(t.ends_with("..."));
        assert_eq!(truncate("short"), "short");
    }
}
