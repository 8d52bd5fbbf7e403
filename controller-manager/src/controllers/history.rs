//! ControllerRevision history shared by the DaemonSet and StatefulSet controllers, as upstream's
//! controller history: each distinct pod template is one revision `<owner>-<hash>` labelled
//! `controller-revision-hash: <hash>`, whose data is the strategic-merge patch that puts the
//! template back (what `kubectl rollout undo` applies). Returning to an older template renumbers
//! its revision as the newest, so "the previous revision" stays the one before the current.

use std::{collections::HashSet, sync::Arc};

use k8s_openapi::{
    api::{apps::v1::ControllerRevision, core::v1::PodTemplateSpec},
    apimachinery::pkg::runtime::RawExtension,
};
use kube::{
    api::{Api, DeleteParams, ObjectMeta, PostParams},
    Client, Resource, ResourceExt,
};
use serde_json::{json, Value};

use crate::pods::{self, controller_of};

/// The label naming a revision's hash, on revisions and the pods made from them.
pub const HASH_LABEL: &str = "controller-revision-hash";
/// Old revisions kept when the owner does not say (`revisionHistoryLimit`).
pub const DEFAULT_HISTORY_LIMIT: i32 = 10;

/// The revisions in `revisions` controlled by the object with `uid`.
pub fn owned_by(
    revisions: Vec<Arc<ControllerRevision>>,
    uid: &str,
) -> Vec<Arc<ControllerRevision>> {
    revisions
        .into_iter()
        .filter(|r| controller_of(&r.metadata).is_some_and(|o| o.uid == uid))
        .collect()
}

/// A revision's data: a patch replacing `spec.template` with `template`.
pub fn patch_for(template: &PodTemplateSpec) -> Value {
    let mut template = serde_json::to_value(template).unwrap_or_else(|_| json!({}));
    if let Some(map) = template.as_object_mut() {
        map.insert("$patch".into(), "replace".into());
    }
    json!({ "spec": { "template": template } })
}

/// The pod template a revision records.
pub fn template_of(revision: &ControllerRevision) -> Option<PodTemplateSpec> {
    let mut template = revision.data.as_ref()?.0.pointer("/spec/template")?.clone();
    if let Some(map) = template.as_object_mut() {
        map.remove("$patch");
    }
    serde_json::from_value(template).ok()
}

/// The name of `owner`'s revision with `hash`.
pub fn revision_name<K: Resource>(owner: &K, hash: &str) -> String {
    format!("{}-{hash}", owner.name_any())
}

/// Makes the revision of `template` (hashed `hash`) exist among `owner`'s revisions `owned`
/// and be the newest, returning its name.
pub async fn ensure<K: Resource<DynamicType = ()>>(
    client: &Client,
    owner: &K,
    owned: &[Arc<ControllerRevision>],
    template: &PodTemplateSpec,
    hash: &str,
) -> Result<String, kube::Error> {
    let name = revision_name(owner, hash);
    let api: Api<ControllerRevision> =
        Api::namespaced(client.clone(), &owner.namespace().unwrap_or_default());
    let newest = owned.iter().map(|r| r.revision).max().unwrap_or(0);
    if let Some(existing) = owned.iter().find(|r| r.name_any() == name) {
        if existing.revision < newest {
            let mut renumbered = (**existing).clone();
            renumbered.revision = newest + 1;
            match api
                .replace(&name, &PostParams::default(), &renumbered)
                .await
            {
                Ok(_) => {}
                // A stale cache: the next sync sees the current numbering.
                Err(e) if pods::is_conflict(&e) || pods::is_not_found(&e) => {}
                Err(e) => return Err(e),
            }
        }
        return Ok(name);
    }
    let mut labels = template
        .metadata
        .as_ref()
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    labels.insert(HASH_LABEL.into(), hash.into());
    let revision = ControllerRevision {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            namespace: owner.namespace(),
            labels: Some(labels),
            owner_references: Some(vec![pods::controller_ref(owner)]),
            ..Default::default()
        },
        data: Some(RawExtension(patch_for(template))),
        revision: newest + 1,
    };
    match api.create(&PostParams::default(), &revision).await {
        Ok(_) => Ok(name),
        Err(e) if pods::is_conflict(&e) => Ok(name),
        Err(e) => Err(e),
    }
}

/// The oldest of `owned` beyond `limit` that no live revision (in use by a pod, current or
/// update) is among.
pub fn surplus<'a>(
    owned: &'a [Arc<ControllerRevision>],
    live: &HashSet<String>,
    limit: i32,
) -> Vec<&'a Arc<ControllerRevision>> {
    let mut old: Vec<&Arc<ControllerRevision>> = owned
        .iter()
        .filter(|r| !live.contains(&r.name_any()))
        .collect();
    old.sort_by_key(|r| r.revision);
    let excess = old.len().saturating_sub(limit.max(0) as usize);
    old.truncate(excess);
    old
}

/// Deletes the revisions `surplus` picks.
pub async fn truncate(
    client: &Client,
    owned: &[Arc<ControllerRevision>],
    live: &HashSet<String>,
    limit: i32,
) -> Result<(), kube::Error> {
    for r in surplus(owned, live, limit) {
        let api: Api<ControllerRevision> =
            Api::namespaced(client.clone(), &r.namespace().unwrap_or_default());
        match api.delete(&r.name_any(), &DeleteParams::default()).await {
            Ok(_) => {}
            Err(e) if pods::is_not_found(&e) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn revision(name: &str, number: i64) -> Arc<ControllerRevision> {
        Arc::new(ControllerRevision {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..Default::default()
            },
            data: None,
            revision: number,
        })
    }

    #[test]
    fn data_is_a_replacing_patch_that_round_trips() {
        let template: PodTemplateSpec = serde_json::from_value(json!({
            "metadata": { "labels": { "app": "a" } },
            "spec": { "containers": [{ "name": "c", "image": "busybox:1" }] },
        }))
        .unwrap();
        let data = patch_for(&template);
        assert_eq!(data["spec"]["template"]["$patch"], "replace");
        let cr = ControllerRevision {
            data: Some(RawExtension(data)),
            ..revision("a-1", 1).as_ref().clone()
        };
        assert_eq!(template_of(&cr), Some(template));
    }

    #[test]
    fn surplus_is_the_oldest_revisions_not_live() {
        let owned = vec![
            revision("r1", 1),
            revision("r2", 2),
            revision("r3", 3),
            revision("r4", 4),
            revision("r5", 5),
        ];
        let live: HashSet<String> = ["r1".to_string(), "r5".to_string()].into();
        let names = |v: Vec<&Arc<ControllerRevision>>| -> Vec<String> {
            v.iter().map(|r| r.name_any()).collect()
        };
        assert_eq!(names(surplus(&owned, &live, 1)), ["r2", "r3"]);
        assert!(surplus(&owned, &live, 3).is_empty());
        assert_eq!(names(surplus(&owned, &live, 0)), ["r2", "r3", "r4"]);
    }
}
