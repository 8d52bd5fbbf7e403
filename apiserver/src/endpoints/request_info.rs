//! Parsing a request path into what it addresses, as upstream's RequestInfoFactory:
//! `/api/v1/namespaces/{ns}/{resource}/{name}/{subresource}` and the `/apis/{group}/...` form.

/// The parts of a resource request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestInfo {
    pub group: String,
    pub version: String,
    pub namespace: String,
    pub resource: String,
    pub name: String,
    pub subresource: String,
    /// get, list, watch, create, update, patch, delete, deletecollection.
    pub verb: String,
}

/// Subresources of a namespace, which are not resources in their own right.
const NAMESPACE_SUBRESOURCES: &[&str] = &["status", "finalize"];

/// Parses a resource path; `None` for paths that address no resource.
pub fn parse(method: &str, path: &str, query_watch: bool) -> Option<RequestInfo> {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let mut info = RequestInfo::default();
    let rest: &[&str] = match parts.as_slice() {
        ["api", version, rest @ ..] if !rest.is_empty() => {
            info.version = version.to_string();
            rest
        }
        ["apis", group, version, rest @ ..] if !rest.is_empty() => {
            info.group = group.to_string();
            info.version = version.to_string();
            rest
        }
        _ => return None,
    };
    let mut rest = rest.to_vec();
    let mut watch = query_watch;
    if rest.first() == Some(&"watch") {
        watch = true;
        rest.remove(0);
    }
    if rest.first() == Some(&"namespaces") && rest.len() > 1 {
        info.namespace = rest[1].to_string();
        if rest.len() > 2 && !NAMESPACE_SUBRESOURCES.contains(&rest[2]) {
            rest.drain(..2);
        }
    }
    match rest.as_slice() {
        [resource] => info.resource = resource.to_string(),
        [resource, name] => {
            info.resource = resource.to_string();
            info.name = name.to_string();
        }
        [resource, name, sub] => {
            info.resource = resource.to_string();
            info.name = name.to_string();
            info.subresource = sub.to_string();
        }
        _ => return None,
    }
    if info.resource == "namespaces" {
        // `/api/v1/namespaces/{name}` names a namespace, it is not a namespace scope.
        info.namespace.clear();
    }
    info.verb = match method {
        "GET" | "HEAD" if watch => "watch",
        "GET" | "HEAD" if info.name.is_empty() => "list",
        "GET" | "HEAD" => "get",
        "POST" => "create",
        "PUT" => "update",
        "PATCH" => "patch",
        "DELETE" if info.name.is_empty() => "deletecollection",
        "DELETE" => "delete",
        _ => "",
    }
    .to_string();
    Some(info)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_namespaced_and_cluster_paths() {
        let i = parse(
            "GET",
            "/apis/apps/v1/namespaces/demo/deployments/web/scale",
            false,
        )
        .unwrap();
        assert_eq!(
            (
                i.group.as_str(),
                i.namespace.as_str(),
                i.resource.as_str(),
                i.name.as_str(),
                i.subresource.as_str(),
                i.verb.as_str()
            ),
            ("apps", "demo", "deployments", "web", "scale", "get")
        );
        let n = parse("DELETE", "/api/v1/namespaces/demo", false).unwrap();
        assert_eq!(
            (
                n.resource.as_str(),
                n.name.as_str(),
                n.namespace.as_str(),
                n.verb.as_str()
            ),
            ("namespaces", "demo", "", "delete")
        );
        let f = parse("PUT", "/api/v1/namespaces/demo/finalize", false).unwrap();
        assert_eq!(
            (f.resource.as_str(), f.name.as_str(), f.subresource.as_str()),
            ("namespaces", "demo", "finalize")
        );
        let w = parse("GET", "/api/v1/watch/namespaces/demo/pods", false).unwrap();
        assert_eq!((w.verb.as_str(), w.namespace.as_str()), ("watch", "demo"));
        let l = parse("GET", "/api/v1/pods", true).unwrap();
        assert_eq!(l.verb, "watch");
        assert!(parse("GET", "/api/v1", false).is_none());
        let dc = parse("DELETE", "/api/v1/namespaces/x/configmaps", false).unwrap();
        assert_eq!(dc.verb, "deletecollection");
    }
}
