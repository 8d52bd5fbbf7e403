//! Completion indexes of Indexed Jobs: which index a pod runs, and the compressed text form
//! status uses (`1,3-5,7`).

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::Pod;

pub const INDEX_ANNOTATION: &str = "batch.kubernetes.io/job-completion-index";

/// The completion index a pod runs, from its annotation (or the same-named label).
pub fn of(pod: &Pod) -> Option<i32> {
    pod.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(INDEX_ANNOTATION))
        .or_else(|| {
            pod.metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(INDEX_ANNOTATION))
        })
        .and_then(|v| v.parse().ok())
}

/// Parses `1,3-5,7`.
pub fn parse(text: Option<&str>) -> BTreeSet<i32> {
    let mut out = BTreeSet::new();
    for part in text.unwrap_or("").split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                if let (Ok(a), Ok(b)) = (a.parse::<i32>(), b.parse::<i32>()) {
                    out.extend(a..=b);
                }
            }
            None => {
                if let Ok(n) = part.parse() {
                    out.insert(n);
                }
            }
        }
    }
    out
}

/// Formats indexes, compressing runs of three or more into `first-last`.
pub fn format(set: &BTreeSet<i32>) -> String {
    let mut parts = Vec::new();
    let mut iter = set.iter().copied().peekable();
    while let Some(start) = iter.next() {
        let mut end = start;
        while iter.peek() == Some(&(end + 1)) {
            end += 1;
            iter.next();
        }
        match end - start {
            0 => parts.push(start.to_string()),
            1 => parts.push(format!("{start},{end}")),
            _ => parts.push(format!("{start}-{end}")),
        }
    }
    parts.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_the_compressed_form() {
        let set: BTreeSet<i32> = [1, 3, 4, 5, 7, 8].into();
        assert_eq!(format(&set), "1,3-5,7,8");
        assert_eq!(parse(Some("1,3-5,7,8")), set);
        assert!(parse(None).is_empty());
    }
}
