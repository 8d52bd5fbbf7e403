//! The default `imagePullPolicy` of a container, which depends on the image reference's tag.
//!
//! Upstream reads the reference with the container registry grammar (`distribution/reference`,
//! normalised the way Docker does): an untagged, undigested reference means `:latest`, and a
//! reference it cannot parse has no tag at all. This module implements that grammar.

/// `Always` for a `:latest` or untagged image, `IfNotPresent` for anything else, including
/// references upstream cannot parse (validation reports those).
pub(crate) fn default_pull_policy(image: &str) -> &'static str {
    match parse(image) {
        Some(Reference {
            tag: Some("latest"),
            ..
        })
        | Some(Reference {
            tag: None,
            digest: None,
        }) => "Always",
        _ => "IfNotPresent",
    }
}

/// The parts of a reference that decide the pull policy.
#[derive(Debug, PartialEq)]
struct Reference<'a> {
    tag: Option<&'a str>,
    digest: Option<&'a str>,
}

/// The registry Docker assumes when a reference names none.
const DEFAULT_DOMAIN: &str = "docker.io";
/// Longest repository name, domain included, the grammar accepts.
const NAME_MAX: usize = 255;

fn parse(image: &str) -> Option<Reference<'_>> {
    // A bare 64-hex string would be an image ID, which a reference may not be.
    if image.len() == 64
        && image
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return None;
    }
    let (domain, remainder) = split_domain(image);
    let remote_name = remainder.split(':').next().unwrap_or_default();
    if remote_name.bytes().any(|b| b.is_ascii_uppercase()) {
        return None;
    }
    let (name_and_tag, digest) = match remainder.split_once('@') {
        Some((name, digest)) => (name, Some(digest)),
        None => (remainder, None),
    };
    let (path, tag) = match name_and_tag.rsplit_once(':') {
        Some((path, tag)) => (path, Some(tag)),
        None => (name_and_tag, None),
    };
    let official = if domain == DEFAULT_DOMAIN && !path.contains('/') {
        "library/".len()
    } else {
        0
    };
    let valid = valid_domain(domain)
        && path.split('/').all(valid_path_component)
        && domain.len() + 1 + official + path.len() <= NAME_MAX
        && tag.is_none_or(valid_tag)
        && digest.is_none_or(valid_digest);
    valid.then_some(Reference { tag, digest })
}

/// Splits off the registry host the way Docker does: the first path element is a host only if
/// it looks like one (has a dot or port, is `localhost`, or has upper case).
fn split_domain(image: &str) -> (&str, &str) {
    match image.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.bytes().any(|b| b.is_ascii_uppercase()) =>
        {
            let domain = if first == "index.docker.io" {
                DEFAULT_DOMAIN
            } else {
                first
            };
            (domain, rest)
        }
        _ => (DEFAULT_DOMAIN, image),
    }
}

/// `host[:port]`, the host being dotted DNS labels or a bracketed IPv6 address.
fn valid_domain(domain: &str) -> bool {
    let (host_ok, port) = match domain.strip_prefix('[') {
        Some(bracketed) => match bracketed.split_once(']') {
            Some((addr, port)) => (
                !addr.is_empty() && addr.bytes().all(|b| b.is_ascii_hexdigit() || b == b':'),
                port,
            ),
            None => return false,
        },
        None => {
            let (host, port) = domain.split_at(domain.find(':').unwrap_or(domain.len()));
            (host.split('.').all(valid_dns_label), port)
        }
    };
    let port_ok = port.is_empty()
        || port
            .strip_prefix(':')
            .is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    host_ok && port_ok
}

fn valid_dns_label(label: &str) -> bool {
    let bytes = label.as_bytes();
    match (bytes.first(), bytes.last()) {
        (Some(first), Some(last)) => {
            first.is_ascii_alphanumeric()
                && last.is_ascii_alphanumeric()
                && bytes
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
        }
        _ => false,
    }
}

/// Lower-case alphanumerics joined by `.`, `_`, `__` or runs of `-`.
fn valid_path_component(component: &str) -> bool {
    let alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = component.as_bytes();
    if !bytes.first().is_some_and(alnum) || !bytes.last().is_some_and(alnum) {
        return false;
    }
    bytes
        .split(alnum)
        .filter(|sep| !sep.is_empty())
        .all(|sep| matches!(sep, b"." | b"_" | b"__") || sep.iter().all(|b| *b == b'-'))
}

/// A word character followed by up to 127 word characters, dots or dashes.
fn valid_tag(tag: &str) -> bool {
    let word = |b: &u8| b.is_ascii_alphanumeric() || *b == b'_';
    let bytes = tag.as_bytes();
    bytes.first().is_some_and(word)
        && bytes.len() <= 128
        && bytes.iter().all(|b| word(b) || *b == b'.' || *b == b'-')
}

/// `algorithm:hex`, with only the algorithms the kubelet registers and their exact lengths.
fn valid_digest(digest: &str) -> bool {
    let Some((algorithm, hex)) = digest.split_once(':') else {
        return false;
    };
    let len = match algorithm {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        _ => return false,
    };
    hex.len() == len
        && hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "sha256:9b6a8b4bd0c8b4b6fb1fbb1f7b4e4c6d3a9b7c5e2f1d0c9b8a7f6e5d4c3b2a10";

    #[test]
    fn untagged_and_latest_pull_always() {
        for image in [
            "nginx",
            "nginx:latest",
            "library/nginx",
            "registry.k8s.io/pause:latest",
        ] {
            assert_eq!(default_pull_policy(image), "Always", "{image}");
        }
    }

    #[test]
    fn tagged_or_digested_pull_if_not_present() {
        let digested = format!("nginx@{SHA}");
        let both = format!("nginx:latest@{SHA}");
        for image in [
            "nginx:1.27",
            "localhost:5000/app:v1",
            "registry.k8s.io/pause:3.10",
            "[::1]:5000/app:v2",
            digested.as_str(),
        ] {
            assert_eq!(default_pull_policy(image), "IfNotPresent", "{image}");
        }
        assert_eq!(default_pull_policy(&both), "Always");
    }

    #[test]
    fn unparsable_references_have_no_tag() {
        let hex_id = "a".repeat(64);
        let bad_digest = format!("nginx@{}", SHA.to_uppercase());
        for image in [
            "",
            "Nginx",
            "nginx:",
            "nginx::1",
            "-nginx",
            "ngi--nx_",
            "nginx@sha1:abc",
            hex_id.as_str(),
            bad_digest.as_str(),
            "host:port/app",
        ] {
            assert_eq!(parse(image), None, "{image}");
            assert_eq!(default_pull_policy(image), "IfNotPresent", "{image}");
        }
    }

    #[test]
    fn upper_case_first_element_is_a_registry() {
        assert_eq!(
            parse("MyRegistry/app"),
            Some(Reference {
                tag: None,
                digest: None
            })
        );
    }

    #[test]
    fn separators_follow_the_grammar() {
        assert!(valid_path_component("a.b_c__d---e"));
        assert!(!valid_path_component("a___b"));
        assert!(!valid_path_component("a..b"));
        assert!(!valid_path_component("a._b"));
    }

    #[test]
    fn overlong_names_are_rejected() {
        let long = "a".repeat(250);
        assert_eq!(parse(&long), None);
        assert!(parse(&"a".repeat(200)).is_some());
    }
}
