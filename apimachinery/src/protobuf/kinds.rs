//! Which protobuf message carries a given apiVersion and kind.

use super::table;
use crate::schema;

/// Package of the `meta.k8s.io/v1` types (DeleteOptions, Status, ...), which Kubernetes
/// registers in every group version.
const META_V1: &str = "io.k8s.apimachinery.pkg.apis.meta.v1";

/// The message index for an apiVersion/kind, trying in order the served schema roots,
/// k8s-pb's resource types, any type in the package of that group version, the item type of
/// a `...List` kind, and the meta/v1 types.
pub(crate) fn message_for(api_version: &str, kind: &str) -> Option<usize> {
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let defs = schema::definitions();
    if let Some(root) = defs.root(group, version, kind) {
        if let Some(i) = table::find(root.definition) {
            return Some(i);
        }
    }
    if let Some(r) = table::resources()
        .iter()
        .find(|r| r.api_version == api_version && r.kind == kind)
    {
        return Some(r.message);
    }
    let packages = table::resources()
        .iter()
        .filter(|r| r.api_version == api_version)
        .map(|r| table::message(r.message).name)
        .chain(
            defs.roots
                .iter()
                .filter(|r| r.group == group && r.version == version)
                .map(|r| r.definition),
        )
        .filter_map(|name| name.rsplit_once('.').map(|(pkg, _)| pkg));
    for pkg in packages.chain([META_V1]) {
        if let Some(i) = table::find(&format!("{pkg}.{kind}")) {
            return Some(i);
        }
    }
    let item = kind.strip_suffix("List").filter(|k| !k.is_empty())?;
    let item = table::message(message_for(api_version, item)?).name;
    table::find(&format!("{item}List"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(api_version: &str, kind: &str) -> Option<&'static str> {
        message_for(api_version, kind).map(|i| table::message(i).name)
    }

    #[test]
    fn resolves_roots_resources_subresources_lists_and_meta() {
        assert_eq!(
            name("v1", "Namespace"),
            Some("io.k8s.api.core.v1.Namespace")
        );
        assert_eq!(
            name("apps/v1", "Deployment"),
            Some("io.k8s.api.apps.v1.Deployment")
        );
        assert_eq!(
            name("networking.k8s.io/v1", "Ingress"),
            Some("io.k8s.api.networking.v1.Ingress")
        );
        assert_eq!(
            name("policy/v1", "Eviction"),
            Some("io.k8s.api.policy.v1.Eviction")
        );
        assert_eq!(
            name("authentication.k8s.io/v1", "TokenRequest"),
            Some("io.k8s.api.authentication.v1.TokenRequest")
        );
        assert_eq!(
            name("apps/v1", "DeploymentList"),
            Some("io.k8s.api.apps.v1.DeploymentList")
        );
        assert_eq!(
            name("apps/v1", "DeleteOptions"),
            Some("io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions")
        );
        assert_eq!(
            name("storage.k8s.io/v1", "CSIDriver"),
            Some("io.k8s.api.storage.v1.CSIDriver")
        );
        assert_eq!(
            name("apiextensions.k8s.io/v1", "CustomResourceDefinition"),
            Some(
                "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinition"
            )
        );
        assert_eq!(name("example.com/v1", "Widget"), None);
        assert_eq!(name("v1", "List"), Some("io.k8s.api.core.v1.List"));
        assert_eq!(name("v1", "WidgetList"), None);
    }
}
